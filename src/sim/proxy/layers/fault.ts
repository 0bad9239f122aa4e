// Injected faults on the request path. Pushed twice: on the callee's inbound side
// (per attempt, so the caller's retries, timeouts and outlier detection see the
// fault — Istio users' most upvoted complaint is that its faults skip retries) and
// on the caller's outbound side (before routing and retries, as Envoy's fault
// filter). A request no fault matches pays one map lookup.
import {parseDuration} from '../../config/duration.js'
import {describeFault, type FaultInfo, type FaultSide, type FaultSpec} from '../../faults/fault.js'
import type {FaultSet} from '../../faults/fault-set.js'
import type {Clock, Timer} from '../../time/clock.js'
import {type BodySink, type BodySource, ResponseBody} from '../body.js'
import {grpcStatusOfReply, isGrpcRequest} from '../grpc.js'
import {firstHeader, type HeaderPairs} from '../headers.js'
import {ProxyError} from '../respond.js'
import {type CallContext, callService, type Layer, type MeshRequest, type MeshResponse, replyWith} from '../stack.js'
import {whenAborted} from '../../abort-signal.js'

export interface FaultLayerDeps {
  faults: FaultSet
  /** `faults.allowHeaders` in mesh.yaml: honour x-mesh-fault-* request headers. */
  allowHeaders: () => boolean
}

export const fault =
  (side: FaultSide, deps: FaultLayerDeps): Layer =>
  (inner) => {
    // A request no fault can match goes straight through; one that may be hit takes the (async) long way.
    return function fault(req, ctx, reply) {
      const headerFaults = side === 'callee' && deps.allowHeaders() ? fromHeaders(req) : undefined
      if (!headerFaults && !deps.faults.any(side, req.destination)) return inner(req, ctx, reply)
      replyWith(injected(req, ctx, headerFaults), reply)
    }
    async function injected(req: MeshRequest, ctx: CallContext, headerFaults: FaultSpec[] | undefined): Promise<MeshResponse> {
      const version = side === 'callee' ? ctx.endpoint?.version : undefined
      const matched = deps.faults.match(side, req.destination, version, {
        source: req.source,
        path: req.path,
        header: (name) => firstHeader(req.headers, name),
      })
      const hits: FaultSpec[] = headerFaults ? [...matched, ...headerFaults] : matched
      if (hits.length === 0) return callService(inner, req, ctx)
      // This try's signal, as it was when the try reached us (see CallContext.signal).
      const signal = ctx.signal
      const faults = (ctx.decision.faults ??= [])
      for (const f of hits) faults.push(`${describeFault(f)} (${(f as FaultInfo).id ?? 'header'})`)

      for (const f of hits) if (f.kind === 'delay') await ctx.clock.sleep(delayOf(f, ctx), signal)
      for (const f of hits) {
        const why = `fault injected: ${describeFault(f)} on "${req.destination}" (${(f as FaultInfo).id ?? 'x-mesh-fault header'})`
        if (f.kind === 'abort') {
          const status = f.status ?? 503
          // Retries see what the caller would: a gRPC call's status, an HTTP request's.
          const grpcStatus = isGrpcRequest(req.headers) ? (f.grpcStatus ?? grpcStatusOfReply(status, 'FI')) : undefined
          throw new ProxyError(status, 'FI', why, {grpcStatus: f.grpcStatus, outcome: {kind: 'response', status, grpcStatus}})
        }
        if (f.kind === 'partition') {
          if (f.blackhole) await new Promise<never>((_, reject) => whenAborted(signal, () => reject(signal.reason)))
          throw new ProxyError(503, 'UF', why, {outcome: {kind: 'connect-failure'}})
        }
        if (f.kind === 'reset' && f.afterBytes === undefined) {
          throw new ProxyError(502, 'UC', why, {outcome: {kind: 'reset'}, resetClient: side === 'caller'})
        }
      }
      let response = await callService(inner, req, ctx)
      for (const f of hits) response = shape(response, f, ctx.clock)
      return response
    }
  }

/** `x-mesh-fault-abort: 503`, `x-mesh-fault-delay: 200ms` (or `200`, milliseconds): one request's own fault, for tests. */
function fromHeaders(req: MeshRequest): FaultSpec[] | undefined {
  const abort = firstHeader(req.headers, 'x-mesh-fault-abort')
  const delay = firstHeader(req.headers, 'x-mesh-fault-delay')
  if (abort === undefined && delay === undefined) return undefined
  // For this hop only: the app behind never sees them.
  delete req.headers['x-mesh-fault-abort']
  delete req.headers['x-mesh-fault-delay']
  const out: FaultSpec[] = []
  // A bare number is milliseconds, as Envoy's x-envoy-fault-delay-request reads it; with a unit, a duration.
  const delayMs = delay === undefined ? undefined : /^\d+$/.test(delay.trim()) ? Number(delay) : parseDuration(delay)
  if (delayMs !== undefined) out.push({service: req.destination, kind: 'delay', delayMs})
  const status = abort !== undefined ? Number(abort) : NaN
  if (Number.isInteger(status) && status >= 200 && status <= 599) out.push({service: req.destination, kind: 'abort', status})
  return out.length ? out : undefined
}

function delayOf(f: FaultSpec, ctx: CallContext): number {
  const base = f.delayMs ?? 0
  if (!f.jitterMs) return base
  // Jitter comes from the request's own trace id bits: deterministic for a replayed trace, no shared dice.
  const u = parseInt(ctx.traceId.slice(-8), 16) / 0xffffffff
  return Math.max(0, base + (u * 2 - 1) * f.jitterMs)
}

/** Faults that act on the response body as it streams. */
function shape(response: MeshResponse, f: FaultSpec, clock: Clock): MeshResponse {
  const inner = response.body
  if (!inner) return response
  let shaper: Shaper | undefined
  if (f.kind === 'reset' && f.afterBytes !== undefined) shaper = new Truncate(inner, f.afterBytes)
  else if (f.kind === 'bandwidth' && f.bytesPerSecond) shaper = new Throttle(inner, f.bytesPerSecond, clock)
  else if (f.kind === 'slow-close') shaper = new HoldEnd(inner, f.delayMs ?? 1000, clock)
  if (!shaper) return response
  inner.pipeTo(shaper)
  return {...response, body: shaper.out}
}

/** Reads the instance's body and writes the shaped one (`out`); a consumer that gives up stops both. */
class Shaper implements BodySink, BodySource {
  readonly out = new ResponseBody(this)

  constructor(protected readonly inner: ResponseBody) {}

  write(chunk: Buffer): boolean {
    return this.out.push(chunk)
  }

  end(trailers?: HeaderPairs): void {
    this.out.end(trailers)
  }

  abort(error: Error): void {
    this.out.fail(error)
  }

  resume(): void {
    this.inner.resume()
  }

  cancel(error?: Error): void {
    this.inner.destroy(error)
  }
}

/** Passes `limit` bytes, then cuts the body: the client gets a truncated response and a reset. */
class Truncate extends Shaper {
  private passed = 0

  constructor(
    inner: ResponseBody,
    private readonly limit: number,
  ) {
    super(inner)
  }

  override write(chunk: Buffer): boolean {
    const room = this.limit - this.passed
    if (chunk.length <= room) {
      this.passed += chunk.length
      return this.out.push(chunk)
    }
    // A body shorter than the limit ends normally (as Toxiproxy's limit_data).
    if (room > 0) this.out.push(chunk.subarray(0, room))
    this.passed = this.limit
    this.out.fail(new Error('fault injected: connection reset mid-response'))
    this.inner.destroy()
    return false
  }
}

/** Paces chunks so the body flows at about `bytesPerSecond`, in tenths of a second. */
class Throttle extends Shaper {
  private readonly slice: number
  private pending: Buffer | undefined
  private offset = 0
  private timer: Timer | undefined

  constructor(
    inner: ResponseBody,
    private readonly bytesPerSecond: number,
    private readonly clock: Clock,
  ) {
    super(inner)
    this.slice = Math.max(1, Math.floor(bytesPerSecond / 10))
  }

  override write(chunk: Buffer): boolean {
    this.pending = chunk
    this.offset = 0
    this.next()
    // Always full: the next chunk waits until this one is paced out.
    return false
  }

  // The pacing, not the consumer, decides when the next chunk comes.
  override resume(): void {}

  override abort(error: Error): void {
    this.timer?.cancel()
    super.abort(error)
  }

  override cancel(error?: Error): void {
    this.timer?.cancel()
    super.cancel(error)
  }

  private readonly next = (): void => {
    this.timer = undefined
    const chunk = this.pending!
    if (this.offset >= chunk.length) {
      this.pending = undefined
      return this.inner.resume()
    }
    const piece = chunk.subarray(this.offset, this.offset + this.slice)
    this.offset += piece.length
    this.out.push(piece)
    this.timer = this.clock.setTimer((piece.length / this.bytesPerSecond) * 1000, this.next)
  }
}

/** Holds the end of the body: the connection closes late (Toxiproxy's slow_close). */
class HoldEnd extends Shaper {
  private timer: Timer | undefined

  constructor(
    inner: ResponseBody,
    private readonly ms: number,
    private readonly clock: Clock,
  ) {
    super(inner)
  }

  override end(trailers?: HeaderPairs): void {
    this.timer = this.clock.setTimer(this.ms, () => this.out.end(trailers))
  }

  override cancel(error?: Error): void {
    this.timer?.cancel()
    super.cancel(error)
  }
}
