// The warm-up `mesh up` runs once every instance is healthy, before it returns: a short,
// bounded burst of requests through every edge whose callee is simulated, so the first
// requests a user sends do not pay for what a fresh mesh does once (issue #23 item 3):
// V8 compiling the daemon's proxy path and each simulated service's handler, connection
// pools from sidecars to instances and from instances to their outbound sidecars filling,
// lazily built structures. Measured with bench/warm-up.js.
//
//   targets (pure): each caller instance's outbound listener for each callee, and each
//                   ingress route, with the paths below
//   run:            `concurrency` workers take the targets in turn until `maxMs` or
//                   `maxRequests` (whichever first) or an abort (mesh down); each request
//                   carries a fresh trace id the filter below knows
//   filter:         the daemon's telemetry sink: spans of those traces are dropped, so
//                   `mesh stat`, traces, metrics, access logs and OTLP never show them
//
// A simulated callee is sent the requests its callers make (it has no side effects and
// answers any path). A `command:` service is the user's code, which the mesh cannot know is
// safe to call: it is sent its health path, which the mesh calls anyway (so the edge's
// connections and the sidecars' code are warm), and the GET paths its `warmUp:` names as
// safe (so are its own handlers, and the calls they make through the mesh). An
// `address:` service, one with `scaling:` (its autoscaler would count the burst) or a
// `rateLimit` (the burst would spend its tokens) is left alone.
import {Agent, request} from 'undici'
import {matchRoute, rewritePath} from '../config/ingress-routes.js'
import type {IngressRoute, MeshConfig, ServiceConfig} from '../config/types.js'
import type {TelemetrySink} from '../proxy/telemetry-sink.js'
import type {Span} from '../telemetry/span.js'
import {formatTraceparent, newSpanId, newTraceId} from '../telemetry/trace-context.js'
import {type Clock, realClock, type Timer} from '../time/clock.js'
import type {MeshStatus} from './status.js'
import {WARM_UP_TRACESTATE} from '../model/simulated-service.js'

export interface WarmUpTarget {
  /** `frontend-v1-0 → catalog`, `ingress /shop → shop`: what the progress and the tests name. */
  edge: string
  /** The listener's base URL: a caller's outbound sidecar for the callee, or the ingress. */
  url: string
  path: string
  method: string
}

export interface WarmUpLimits {
  maxMs: number
  maxRequests: number
  concurrency: number
}

/**
 * About one second and a few thousand requests: measured on the shop template (2 cores),
 * enough for the daemon's proxy path and the simulated handlers to be compiled and the
 * pools to hold a connection per worker; short enough not to be felt in `mesh up`.
 */
export const WARM_UP_LIMITS: WarmUpLimits = {maxMs: 1_200, maxRequests: 3_000, concurrency: 64}

/** How long requests still in flight at the deadline may take before they are cancelled. */
export const WARM_UP_GRACE_MS = 1_000

export interface WarmUpResult {
  requests: number
  /** Requests that got no HTTP answer, or a 5xx (they still warmed what they went through). */
  failed: number
  /** Requests per edge, in target order. */
  byEdge: Record<string, number>
  ms: number
  aborted: boolean
}

/**
 * How a warm-up may call a service: a simulated one at any path (it has no side effects); a
 * `command:` one with GET at its health path, which the mesh calls anyway, and at the paths its
 * `warmUp:` says are safe; else not at all (an address, a TCP or gRPC service, one with
 * `scaling:` or a `rateLimit`).
 */
export function reachOf(service: ServiceConfig | undefined): 'any' | {paths: string[]} | undefined {
  if (!service || service.protocol !== undefined || service.policy.rateLimit || service.versions.length === 0) return undefined
  if (service.versions.some((v) => v.scaling || v.workload.kind === 'address')) return undefined
  if (service.versions.every((v) => v.workload.kind === 'simulate')) return 'any'
  const health = service.health.path !== undefined && service.health.grpcService === undefined ? [service.health.path] : []
  const paths = [...new Set([...health, ...(service.warmUpPaths ?? [])])]
  return paths.length > 0 ? {paths} : undefined
}

/** Every edge of the running mesh a warm-up goes through, each once (pure: config + status). */
export function warmUpTargets(config: MeshConfig, status: MeshStatus): WarmUpTarget[] {
  const services = new Map(config.services.map((s) => [s.name, s]))
  const targets: WarmUpTarget[] = []
  if (status.ingress && config.ingress && !config.ingress.requestAuthentication) {
    const routes = config.ingress.routes
    for (const route of routes) {
      const reach = reachOf(services.get(route.service))
      const paths = reach === 'any' ? [route.prefix] : (reach?.paths.map((p) => ingressPathTo(routes, route, p)) ?? [])
      for (const path of paths) if (path !== undefined) targets.push({edge: `ingress ${path} → ${route.service}`, url: status.ingress.url, path, method: 'GET'})
    }
  }
  for (const s of status.services) {
    const caller = services.get(s.name)
    for (const inst of s.instances) {
      if (!inst.outbound || (inst.health !== 'healthy' && inst.health !== 'running')) continue
      for (const [dep, address] of Object.entries(inst.outbound.dependencies)) {
        const reach = reachOf(services.get(dep))
        if (!reach) continue
        const calls = reach === 'any' ? callsTo(caller, inst.version, dep) : reach.paths.map((path) => ({path, method: 'GET'}))
        for (const {path, method} of calls) {
          targets.push({edge: `${inst.instance} → ${dep}${path === '/' ? '' : ` ${method} ${path}`}`, url: `http://${address}`, path, method})
        }
      }
    }
  }
  return targets
}

/** The ingress path that reaches `servicePath` of the route's service through that route (its prefix the longest that matches, its rewrite applied), if any. */
function ingressPathTo(routes: readonly IngressRoute[], route: IngressRoute, servicePath: string): string | undefined {
  let path = servicePath
  if (route.rewrite !== undefined) {
    if (!servicePath.startsWith(route.rewrite)) return undefined
    const rest = servicePath.slice(route.rewrite.length)
    path = route.prefix.endsWith('/') || rest === '' || rest.startsWith('/') ? route.prefix + rest : `${route.prefix}/${rest}`
  }
  return matchRoute(routes, path) === route && rewritePath(route, path) === servicePath ? path : undefined
}

/** The requests a caller makes to `dep`: a simulated caller's declared calls; anyone else's, GET /. */
function callsTo(caller: ServiceConfig | undefined, version: string, dep: string): Array<{path: string; method: string}> {
  const workload = caller?.versions.find((v) => v.name === version)?.workload
  if (workload?.kind !== 'simulate') return [{path: '/', method: 'GET'}]
  const seen = new Map<string, {path: string; method: string}>()
  for (const call of workload.simulate.calls) if (call.service === dep) seen.set(`${call.method} ${call.path}`, {path: call.path, method: call.method})
  return seen.size > 0 ? [...seen.values()] : [{path: '/', method: 'GET'}]
}

/** The line `mesh up` prints after the warm-up. */
export function describeWarmUp(r: WarmUpResult): string {
  const edges = Object.keys(r.byEdge).length
  const failed = r.failed > 0 ? `, ${r.failed} failed` : ''
  return `Warmed up: ${r.requests} requests over ${edges} edge${edges === 1 ? '' : 's'} in ${(r.ms / 1000).toFixed(1)} s${failed} (not counted in mesh stat, traces or metrics)`
}

export type WarmUpSend = (target: WarmUpTarget, traceparent: string, signal: AbortSignal) => Promise<number>

/**
 * The telemetry sink the data plane records into while a warm-up may have requests in the
 * mesh: the warm-up's traces are dropped, everything else goes on to `inner`. Requests carry
 * their trace id through every hop (the sidecars continue it, simulated services forward it).
 */
export class WarmUp implements TelemetrySink {
  /** Trace ids of the warm-up's requests; emptied a while after the run, when no span of theirs can come any more. */
  private readonly traceIds = new Set<string>()
  private running: AbortController | undefined
  private forget: Timer | undefined
  private closed = false

  constructor(
    private readonly inner: TelemetrySink,
    private readonly clock: Clock = realClock,
    /** After the run, spans of its traces may still be recorded (a hop's span ends after its reply is written). */
    private readonly forgetAfterMs = 10_000,
  ) {}

  record(span: Span): void {
    if (this.traceIds.size > 0 && this.traceIds.has(span.traceId)) return
    this.inner.record(span)
  }

  /** Trace ids not forgotten yet (for tests: the warm-up leaves nothing behind). */
  get remembered(): number {
    return this.traceIds.size
  }

  /** Runs one warm-up over `targets`; resolves (never rejects) once every request it sent has ended. */
  async run(targets: readonly WarmUpTarget[], opts: {limits?: WarmUpLimits; send?: WarmUpSend} = {}): Promise<WarmUpResult> {
    const limits = opts.limits ?? WARM_UP_LIMITS
    if (this.closed) return runWarmUp([], {limits, clock: this.clock, send: () => Promise.resolve(0)})
    this.running?.abort()
    const controller = (this.running = new AbortController())
    this.forget?.cancel()
    const agent = opts.send ? undefined : new Agent({connections: limits.concurrency, keepAliveTimeout: 4_000})
    const send = opts.send ?? undiciSend(agent!)
    try {
      return await runWarmUp(targets, {
        limits,
        clock: this.clock,
        signal: controller.signal,
        send: (target, signal) => {
          const traceId = newTraceId()
          this.traceIds.add(traceId)
          return send(target, formatTraceparent({traceId, parentId: newSpanId(), flags: '01'}), signal)
        },
      })
    } finally {
      if (this.running === controller) this.running = undefined
      await agent?.destroy().catch(() => undefined)
      if (this.closed) this.traceIds.clear()
      else this.forget = this.clock.setTimer(this.forgetAfterMs, () => this.traceIds.clear())
    }
  }

  /** Ends a warm-up under way (the mesh is going down): nothing more is sent, requests in flight are cancelled. */
  abort(): void {
    this.running?.abort(new Error('the mesh is stopping'))
  }

  /** Stops the timer that forgets the trace ids (the daemon is stopping). */
  close(): void {
    this.closed = true
    this.abort()
    this.forget?.cancel()
    this.traceIds.clear()
  }
}

/**
 * The run itself, on any clock and sender: `limits.concurrency` workers take the targets in
 * turn (each target once before any twice), until the time or the request budget is spent
 * or `signal` aborts. Requests still under way then finish, within WARM_UP_GRACE_MS
 * (at once on an abort).
 */
export async function runWarmUp(
  targets: readonly WarmUpTarget[],
  opts: {limits: WarmUpLimits; clock: Clock; signal?: AbortSignal; send: (target: WarmUpTarget, signal: AbortSignal) => Promise<number>},
): Promise<WarmUpResult> {
  const {limits, clock} = opts
  const started = clock.now()
  const byEdge: Record<string, number> = Object.fromEntries(targets.map((t) => [t.edge, 0]))
  const result = {requests: 0, failed: 0, byEdge, ms: 0, aborted: false}
  if (targets.length === 0 || limits.maxRequests <= 0 || limits.maxMs <= 0 || opts.signal?.aborted) {
    return {...result, aborted: opts.signal?.aborted === true}
  }
  // Past the deadline nothing more is sent; what is in flight may finish (a client hanging up
  // is not what a warm-up should teach the mesh) for a grace, then is cancelled.
  let sending = true
  const cancel = new AbortController()
  const onAbort = () => {
    sending = false
    cancel.abort(opts.signal?.reason)
  }
  opts.signal?.addEventListener('abort', onAbort, {once: true})
  const timers = [
    clock.setTimer(limits.maxMs, () => (sending = false)),
    clock.setTimer(limits.maxMs + WARM_UP_GRACE_MS, () => cancel.abort(new Error('the warm-up took its time'))),
  ]
  let next = 0
  const worker = async () => {
    while (sending && next < limits.maxRequests) {
      const target = targets[next++ % targets.length]
      result.requests++
      byEdge[target.edge]++
      const status = await opts.send(target, cancel.signal).catch(() => 0)
      if (status === 0 || status >= 500) result.failed++
    }
  }
  try {
    await Promise.all(Array.from({length: Math.max(1, Math.min(limits.concurrency, limits.maxRequests))}, worker))
  } finally {
    for (const t of timers) t.cancel()
    opts.signal?.removeEventListener('abort', onAbort)
  }
  return {...result, ms: clock.now() - started, aborted: opts.signal?.aborted === true}
}

function undiciSend(agent: Agent): WarmUpSend {
  return async (target, traceparent, signal) => {
    const res = await request(target.url + target.path, {method: target.method as 'GET', headers: {traceparent, tracestate: WARM_UP_TRACESTATE}, dispatcher: agent, signal})
    await res.body.dump()
    return res.statusCode
  }
}
