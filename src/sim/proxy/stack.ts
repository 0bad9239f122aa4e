// The sidecar's request path as a stack of small layers, read top to bottom like
// linkerd2-proxy's `.push(layer)` chains. A layer wraps the service below it.
//
//   trace → rate-limit → route → timeout(overall) → retry → timeout(per-try)
//         → circuit-breaker → balance → outcome → upstream (undici)
import type {Readable} from 'node:stream'
import type {Endpoint} from '../control/registry.js'
import type {Clock} from '../time/clock.js'
import type {HeaderMap} from './headers.js'
import type {ResponseFlag} from './respond.js'
import type {RoutingDecision} from '../telemetry/span.js'

export interface MeshRequest {
  method: string
  /** Origin-form path with query. */
  path: string
  /** End-to-end headers only (hop-by-hop already stripped). */
  headers: HeaderMap
  /** A body the retry layer may replay (buffered within the bound), a one-shot stream, or none. */
  body: Buffer | Readable | null
  /** False when the body was too large to buffer: such a request is never retried. */
  replayable: boolean
  destination: string
  source: string
  sourceVersion?: string
  sourceInstance?: string
}

export interface MeshResponse {
  status: number
  headers: HeaderMap
  body: Readable | null
  endpoint?: Endpoint
  /** Set when the mesh made this reply itself. */
  flags?: ResponseFlag
  cause?: string
}

export type {RoutingDecision}

export interface CallContext {
  readonly clock: Clock
  /** Aborts the work below: the client went away or a timeout fired. */
  signal: AbortSignal
  /** Cancels the whole request (the overall timeout); `signal` then aborts with `reason`. */
  readonly cancel: (reason: Error) => void
  readonly traceId: string
  readonly traceFlags: string
  /** The client span of this call (the caller's outbound side). */
  readonly clientSpanId: string
  /** The span the caller's traceparent named (the caller's own server span), if any. */
  readonly parentSpanId?: string
  readonly decision: RoutingDecision
  /** 1 for the first try; set by the retry layer. */
  attempt: number
  /** Set by the route layer. */
  version?: string
  /** Set by the balance layer, per attempt. */
  endpoint?: Endpoint
  /** Instances tried by earlier attempts: a retry goes elsewhere when it can. */
  readonly tried: Set<string>
}

export type Service = (req: MeshRequest, ctx: CallContext) => Promise<MeshResponse>
export type Layer = (inner: Service) => Service

export interface Stack {
  push(layer: Layer | undefined): Stack
  service(): Service
}

/** Layers pushed later wrap those pushed earlier; `undefined` (a policy not configured) is skipped. */
export function stack(base: Service): Stack {
  let current = base
  return {
    push(layer) {
      if (layer) current = layer(current)
      return this
    },
    service: () => current,
  }
}

const DONE = Symbol('meshsim.bodyDone')
type Tracked = Readable & {[DONE]?: Array<() => void>}

/**
 * Runs `fn` once when the response body is fully consumed or destroyed (or at once if
 * there is none). Every layer of a hop waits on the same body: they share one 'close'
 * listener (kept on the body, so a fault's wrapping body gets its own list).
 */
export function onBodyDone(res: MeshResponse, fn: () => void): void {
  const body = res.body as Tracked | null
  if (!body) return fn()
  const waiting = body[DONE]
  if (waiting) return void waiting.push(fn)
  const list = (body[DONE] = [fn])
  // Bodies here are autoDestroy streams: 'close' follows both 'end' and an error, exactly once.
  body.once('close', () => {
    for (let i = 0; i < list.length; i++) list[i]()
  })
  // A body discarded (a retried attempt) or cut (a reset) errors; that must never crash the daemon.
  body.on('error', ignore)
}

function ignore(): void {}
