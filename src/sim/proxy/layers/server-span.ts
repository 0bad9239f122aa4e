// The callee's inbound side of one attempt: a server span from the moment the
// attempt is sent until its response body is done (or it fails).
import type {Endpoint} from '../registry.js'
import {forwardB3, newSpanId} from '../../telemetry/trace-context.js'
import {SpanReply} from '../respond.js'
import {hopSecurity} from '../hop-security.js'
import {type CallContext, forward, type Layer, type MeshRequest, type Reply} from '../stack.js'
import type {TelemetrySink} from '../telemetry-sink.js'
import type {Span} from '../../telemetry/span.js'

/**
 * `spanIds`: random ids unless given (mesh sim numbers its spans, so a run's trace file repeats).
 * `carriesDecision`: no client span of this daemon covers the call (someone dialled a published
 * address), so the server span carries what was decided (the authorization rule) for `--why`.
 */
export const serverSpan =
  (sink: TelemetrySink, carriesDecision = false, spanIds: () => string = newSpanId): Layer =>
  (inner) =>
    function serverSpan(req, ctx, reply) {
      const spanId = spanIds()
      // The instance continues the trace from this span.
      req.headers['traceparent'] = `00-${ctx.traceId}-${spanId}-${ctx.traceFlags}`
      // B3 headers the app sent (rare) are rewritten to name this span too; forwardB3 looks for them.
      forwardB3(req.headers, ctx.traceId, spanId, ctx.clientSpanId, ctx.traceFlags)
      forward(inner, req, ctx, new ServerSpan(reply, sink, req, ctx, spanId, carriesDecision))
    }

class ServerSpan extends SpanReply {
  private readonly endpoint: Endpoint
  // Read now: the retry layer moves ctx.attempt on before this attempt's body is done.
  private readonly attempt: number

  constructor(
    next: Reply,
    sink: TelemetrySink,
    req: MeshRequest,
    ctx: CallContext,
    private readonly spanId: string,
    private readonly carriesDecision: boolean,
  ) {
    super(next, sink, req, ctx)
    this.endpoint = ctx.endpoint!
    this.attempt = ctx.attempt
  }

  protected span(status: number, flags?: string, cause?: string, grpcStatus?: number): Span {
    const {req, ctx, endpoint} = this
    return {
      traceId: ctx.traceId,
      spanId: this.spanId,
      parentId: ctx.clientSpanId || undefined,
      kind: 'server',
      name: this.name,
      service: endpoint.service,
      version: endpoint.version,
      instance: endpoint.instance,
      peerService: req.source,
      peerVersion: req.sourceVersion,
      peerInstance: req.sourceInstance,
      method: req.method,
      path: req.path,
      status,
      grpcStatus,
      startMs: this.startMs,
      durationMs: this.durationMs,
      attempt: this.attempt,
      security: hopSecurity(req, ctx),
      responseFlags: flags,
      cause,
      decision: this.carriesDecision && ctx.decision.authorization ? {authorization: ctx.decision.authorization} : undefined,
    }
  }
}
