// Outermost: the client span of the call (the caller's outbound side) covers
// everything below — rate limit, routing, every retry — until the response body is
// done. It carries the routing decision for `mesh trace --why`.
import {recordWhenDone} from '../respond.js'
import type {Layer} from '../stack.js'
import type {TelemetrySink} from '../telemetry-sink.js'

export const trace =
  (sink: TelemetrySink): Layer =>
  (inner) =>
    function trace(req, ctx) {
      const startWall = ctx.clock.wallNow()
      const started = ctx.clock.now()
      const record = (status: number, flags?: string, cause?: string) =>
        sink.record({
          kind: 'client',
          traceId: ctx.traceId,
          spanId: ctx.clientSpanId,
          parentId: ctx.parentSpanId,
          source: req.source,
          sourceVersion: req.sourceVersion,
          sourceInstance: req.sourceInstance,
          destination: req.destination,
          destinationVersion: ctx.decision.version,
          destinationInstance: ctx.decision.chosen,
          method: req.method,
          path: req.path,
          status,
          startMs: startWall,
          durationMs: ctx.clock.now() - started,
          attempt: ctx.decision.attempts,
          flags,
          cause,
          decision: ctx.decision,
        })
      return recordWhenDone(() => inner(req, ctx), record)
    }
