// Chooses the version a request goes to: the first header / path-prefix rule that
// matches (e.g. `x-canary: true` → v2), else the traffic weights. Optionally mirrors
// a share of requests to another version: the copy's response is discarded and the
// caller never waits for it.
import type {RouteRule} from '../../config/types.js'
import type {Random} from '../../time/random.js'
import {Cancellation} from '../cancellation.js'
import type {EndpointSet} from '../endpoint-set.js'
import {firstHeader} from '../headers.js'
import {noHealthyUpstream} from '../respond.js'
import {TeeBody} from '../request-body.js'
import type {CallContext, Layer, MeshRequest, Service} from '../stack.js'

export interface RouteDeps {
  service: string
  endpoints: EndpointSet
  rules: () => RouteRule[]
  mirror: () => {version: string; percent: number} | undefined
  random: Random
  /** The stack below route, used for mirrored copies (no retries: a shadow is best-effort). */
  mirrorService: () => Service | undefined
  /** How long a copy may take (the route's timeout, as Envoy's shadow has); past it the copy is cancelled. */
  mirrorTimeoutMs: () => number
}

/** A copy's deadline when the service sets no timeout: Envoy's default route timeout. */
export const MIRROR_TIMEOUT_DEFAULT_MS = 15_000

export const route =
  (deps: RouteDeps): Layer =>
  (inner) =>
    function route(req, ctx, reply) {
      const rules = deps.rules()
      let version: string | undefined
      for (let i = 0; i < rules.length; i++) {
        if (matches(rules[i], req)) {
          version = rules[i].version
          ctx.decision.routeMatched = describe(rules[i])
          break
        }
      }
      version ??= deps.endpoints.pickVersion()
      if (!version) return reply.fail(noHealthyUpstream(deps.service, deps.endpoints.size, deps.endpoints.notStarted))
      ctx.version = version
      ctx.decision.version = version
      const mirror = deps.mirror()
      // Only bodies we hold can be copied: an HTTP/2 body kept as it streams (a gRPC call) is
      // copied once it ended; any other streamed body goes to the primary alone, and so does
      // an Upgrade (a shadow WebSocket would be a second live session).
      if (mirror && mirror.version !== version && !req.upgrade && (!isStream(req) || req.body instanceof TeeBody) && deps.random.next() * 100 < mirror.percent) {
        if (req.body instanceof TeeBody) req.body.onWhole((body) => shadow(deps, mirror.version, {...req, body}, ctx))
        else shadow(deps, mirror.version, req, ctx)
      }
      inner(req, ctx, reply)
    }

function matches(rule: RouteRule, req: MeshRequest): boolean {
  const {headers, pathPrefix} = rule.match
  if (pathPrefix !== undefined && !req.path.startsWith(pathPrefix)) return false
  if (headers) {
    for (const name in headers) {
      if (firstHeader(req.headers, name.toLowerCase()) !== headers[name]) return false
    }
  }
  return true
}

function describe(rule: RouteRule): string {
  const parts: string[] = []
  if (rule.match.pathPrefix !== undefined) parts.push(`path ${rule.match.pathPrefix}*`)
  for (const [k, v] of Object.entries(rule.match.headers ?? {})) parts.push(`${k}: ${v}`)
  return `${parts.join(', ')} → ${rule.version}`
}

function isStream(req: MeshRequest): boolean {
  return req.body !== null && !Buffer.isBuffer(req.body)
}

function shadow(deps: RouteDeps, version: string, req: MeshRequest, ctx: CallContext): void {
  const service = deps.mirrorService()
  if (!service) return
  const copy: MeshRequest = {...req, headers: {...req.headers, 'x-mesh-mirror': 'true'}}
  // A cancellation of its own: the copy outlives neither its deadline (it would keep its
  // place in the mirror's breaker and activator as long as the instance hangs) nor needs the
  // request it copies (fire and forget: the client leaving does not cancel it, as in Envoy).
  const cancel = new Cancellation()
  const deadline = ctx.clock.setTimer(deps.mirrorTimeoutMs(), () => cancel.abort(new Error('the mirrored copy took longer than the route timeout')))
  const shadowCtx: CallContext = {...ctx, signal: cancel, canceller: cancel, version, attempt: 1, tried: undefined, endpoint: undefined, decision: {}, mirror: true}
  try {
    service(copy, shadowCtx, {
      ok: (response) => {
        deadline.cancel()
        response.body?.discard()
      },
      fail: () => deadline.cancel(),
    })
  } catch {
    // A shadow never fails the request it copies.
    deadline.cancel()
  }
}

