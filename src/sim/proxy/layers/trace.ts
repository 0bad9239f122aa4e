// Outermost: the client span of the call (the caller's outbound side) covers
// everything below — rate limit, routing, every retry — until the response body is
// done. It carries the routing decision for `mesh trace --why`.
import {SpanReply} from '../respond.js'
import type {CallContext, Layer, MeshRequest, Reply} from '../stack.js'
import {spanName} from '../../telemetry/span.js'
import type {TelemetrySink} from '../telemetry-sink.js'

export const trace =
  (sink: TelemetrySink): Layer =>
  (inner) =>
    function trace(req, ctx, reply) {
      new ClientSpan(reply, sink, req, ctx).run(inner, req, ctx)
    }

class ClientSpan extends SpanReply {
  private readonly started: number

  constructor(
    next: Reply,
    private readonly sink: TelemetrySink,
    private readonly req: MeshRequest,
    private readonly ctx: CallContext,
  ) {
    super(next)
    this.started = ctx.clock.now()
  }

  protected record(status: number, flags?: string, cause?: string): void {
    const {req, ctx, started} = this
    this.sink.record({
      traceId: ctx.traceId,
      spanId: ctx.clientSpanId,
      parentId: ctx.parentSpanId || undefined,
      kind: 'client',
      name: (req.spanName ??= spanName(req.method, req.path)),
      service: req.source,
      version: req.sourceVersion,
      instance: req.sourceInstance,
      peerService: req.destination,
      peerVersion: ctx.decision.version,
      peerInstance: ctx.decision.chosen,
      method: req.method,
      path: req.path,
      status,
      startMs: ctx.clock.wallAt(started),
      durationMs: ctx.clock.now() - started,
      attempt: ctx.decision.attempts,
      responseFlags: flags,
      cause,
      fault: ctx.decision.faults?.join(', ') || undefined,
      decision: ctx.decision,
    })
  }
}
