// The callee's inbound side of one attempt: a server span from the moment the
// attempt is sent until its response body is done (or it fails).
import {forwardB3, newSpanId} from '../../telemetry/trace-context.js'
import {recordWhenDone} from '../respond.js'
import type {Layer} from '../stack.js'
import {spanName} from '../../telemetry/span.js'
import type {TelemetrySink} from '../telemetry-sink.js'

export const serverSpan =
  (sink: TelemetrySink): Layer =>
  (inner) =>
    function serverSpan(req, ctx) {
      const spanId = newSpanId()
      // The instance continues the trace from this span.
      req.headers['traceparent'] = `00-${ctx.traceId}-${spanId}-${ctx.traceFlags}`
      if (req.headers['b3'] !== undefined || req.headers['x-b3-traceid'] !== undefined) {
        forwardB3(req.headers, ctx.traceId, spanId, ctx.clientSpanId, ctx.traceFlags)
      }
      const started = ctx.clock.now()
      const startWall = ctx.clock.wallAt(started)
      const endpoint = ctx.endpoint!
      // Read now: the retry layer moves ctx.attempt on before this attempt's body is done.
      const attempt = ctx.attempt
      const record = (status: number, flags?: string, cause?: string) =>
        sink.record({
          traceId: ctx.traceId,
          spanId,
          parentId: ctx.clientSpanId || undefined,
          kind: 'server',
          name: spanName(req.method, req.path),
          service: endpoint.service,
          version: endpoint.version,
          instance: endpoint.instance,
          peerService: req.source,
          peerVersion: req.sourceVersion,
          peerInstance: req.sourceInstance,
          method: req.method,
          path: req.path,
          status,
          startMs: startWall,
          durationMs: ctx.clock.now() - started,
          attempt,
          responseFlags: flags,
          cause,
        })
      return recordWhenDone(() => inner(req, ctx), record)
    }
