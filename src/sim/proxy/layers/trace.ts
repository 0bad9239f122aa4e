// Outermost: the client span of the call (the caller's outbound side) covers
// everything below — rate limit, routing, every retry — until the response body is
// done. It carries the routing decision for `mesh trace --why`.
import {summariseFaults} from '../../faults/fault.js'
import {SpanReply} from '../respond.js'
import {hopSecurity} from '../hop-security.js'
import {forward, type Layer} from '../stack.js'
import type {TelemetrySink} from '../telemetry-sink.js'
import type {Span} from '../../telemetry/span.js'

export const trace =
  (sink: TelemetrySink): Layer =>
  (inner) =>
    function trace(req, ctx, reply) {
      forward(inner, req, ctx, new ClientSpan(reply, sink, req, ctx))
    }

class ClientSpan extends SpanReply {
  protected span(status: number, flags?: string, cause?: string, grpcStatus?: number): Span {
    const {req, ctx} = this
    const d = ctx.decision
    return {
      traceId: ctx.traceId,
      spanId: ctx.clientSpanId,
      parentId: ctx.parentSpanId || undefined,
      kind: 'client',
      name: this.name,
      service: req.source,
      version: req.sourceVersion,
      instance: req.sourceInstance,
      peerService: req.destination,
      peerVersion: d.version,
      peerInstance: d.chosen,
      method: req.method,
      path: req.path,
      status,
      grpcStatus,
      startMs: this.startMs,
      durationMs: this.durationMs,
      attempt: d.attempts,
      security: hopSecurity(req, ctx),
      responseFlags: flags,
      cause,
      fault: d.faults?.length ? summariseFaults(d.faults) : undefined,
      coldStartMs: ctx.coldStartMs,
      decision: d,
    }
  }
}
