// Injected faults on the request path. Pushed twice: on the callee's inbound side
// (per attempt, so the caller's retries, timeouts and outlier detection see the
// fault — Istio users' most upvoted complaint is that its faults skip retries) and
// on the caller's outbound side (before routing and retries, as Envoy's fault
// filter). A request no fault matches pays one map lookup.
import {Transform, type Readable} from 'node:stream'
import {parseDuration} from '../../config/duration.js'
import {describeFault, type FaultInfo, type FaultSide, type FaultSpec} from '../../faults/fault.js'
import type {FaultSet} from '../../faults/fault-set.js'
import type {Clock} from '../../time/clock.js'
import {firstHeader} from '../headers.js'
import {ProxyError} from '../respond.js'
import type {CallContext, Layer, MeshRequest, MeshResponse} from '../stack.js'

export interface FaultLayerDeps {
  faults: FaultSet
  /** `faults.allowHeaders` in mesh.yaml: honour x-mesh-fault-* request headers. */
  allowHeaders: () => boolean
}

export const fault =
  (side: FaultSide, deps: FaultLayerDeps): Layer =>
  (inner) => {
    // Not async: a request no fault can match goes straight through, without an extra promise.
    return function fault(req, ctx) {
      const headerFaults = side === 'callee' && deps.allowHeaders() ? fromHeaders(req) : undefined
      if (!headerFaults && !deps.faults.any(side, req.destination)) return inner(req, ctx)
      return injected(req, ctx, headerFaults)
    }
    async function injected(req: MeshRequest, ctx: CallContext, headerFaults: FaultSpec[] | undefined): Promise<MeshResponse> {
      const version = side === 'callee' ? ctx.endpoint?.version : undefined
      const matched = deps.faults.match(side, req.destination, version, {
        source: req.source,
        path: req.path,
        header: (name) => firstHeader(req.headers, name),
      })
      const hits: FaultSpec[] = headerFaults ? [...matched, ...headerFaults] : matched
      if (hits.length === 0) return inner(req, ctx)
      const faults = (ctx.decision.faults ??= [])
      for (const f of hits) faults.push(`${describeFault(f)} (${(f as FaultInfo).id ?? 'header'})`)

      for (const f of hits) if (f.kind === 'delay') await ctx.clock.sleep(delayOf(f, ctx), ctx.signal)
      for (const f of hits) {
        const why = `fault injected: ${describeFault(f)} on "${req.destination}" (${(f as FaultInfo).id ?? 'x-mesh-fault header'})`
        if (f.kind === 'abort') {
          const status = f.status ?? 503
          throw new ProxyError(status, 'FI', why, {outcome: {kind: 'response', status}})
        }
        if (f.kind === 'partition') {
          if (f.blackhole) await new Promise<never>((_, reject) => onAbort(ctx, () => reject(ctx.signal.reason)))
          throw new ProxyError(503, 'UF', why, {outcome: {kind: 'connect-failure'}})
        }
        if (f.kind === 'reset' && f.afterBytes === undefined) {
          throw new ProxyError(502, 'UC', why, {outcome: {kind: 'reset'}, resetClient: side === 'caller'})
        }
      }
      let response = await inner(req, ctx)
      for (const f of hits) response = shape(response, f, ctx.clock)
      return response
    }
  }

/** `x-mesh-fault-abort: 503`, `x-mesh-fault-delay: 200ms`: one request's own fault, for tests. */
function fromHeaders(req: MeshRequest): FaultSpec[] | undefined {
  const abort = firstHeader(req.headers, 'x-mesh-fault-abort')
  const delay = firstHeader(req.headers, 'x-mesh-fault-delay')
  if (abort === undefined && delay === undefined) return undefined
  // For this hop only: the app behind never sees them.
  delete req.headers['x-mesh-fault-abort']
  delete req.headers['x-mesh-fault-delay']
  const out: FaultSpec[] = []
  const delayMs = delay !== undefined ? parseDuration(delay) : undefined
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

function onAbort(ctx: CallContext, fn: () => void): void {
  if (ctx.signal.aborted) fn()
  else ctx.signal.addEventListener('abort', fn, {once: true})
}

/** Faults that act on the response body as it streams. */
function shape(response: MeshResponse, f: FaultSpec, clock: Clock): MeshResponse {
  if (!response.body) return response
  let transform: Transform | undefined
  if (f.kind === 'reset' && f.afterBytes !== undefined) transform = truncate(f.afterBytes)
  else if (f.kind === 'bandwidth' && f.bytesPerSecond) transform = throttle(f.bytesPerSecond, clock)
  else if (f.kind === 'slow-close') transform = holdEnd(f.delayMs ?? 1000, clock)
  if (!transform) return response
  const body = response.body as Readable
  body.on('error', (e) => transform!.destroy(e))
  return {...response, body: body.pipe(transform)}
}

/** Passes `limit` bytes, then fails the stream: the client gets a truncated response and a reset. */
function truncate(limit: number): Transform {
  let passed = 0
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const room = limit - passed
      if (room <= 0) return done(new Error('fault injected: connection reset mid-response'))
      if (chunk.length <= room) {
        passed += chunk.length
        return done(null, chunk)
      }
      passed = limit
      this.push(chunk.subarray(0, room))
      done(new Error('fault injected: connection reset mid-response'))
    },
    // A body shorter than the limit ends normally (as Toxiproxy's limit_data).
  })
}

/** Paces chunks so the body flows at about `bytesPerSecond`. */
function throttle(bytesPerSecond: number, clock: Clock): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10))
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      let offset = 0
      const next = () => {
        if (offset >= chunk.length) return done()
        const piece = chunk.subarray(offset, offset + slice)
        offset += piece.length
        this.push(piece)
        clock.setTimer((piece.length / bytesPerSecond) * 1000, next)
      }
      next()
    },
  })
}

/** Holds the end of the body: the connection closes late (Toxiproxy's slow_close). */
function holdEnd(ms: number, clock: Clock): Transform {
  return new Transform({
    transform(chunk, _enc, done) {
      done(null, chunk)
    },
    flush(done) {
      clock.setTimer(ms, () => done())
    },
  })
}
