// The callee's server span: a span of its own, child of the caller's client span, never reusing its id.
import {describe, expect, test} from 'vitest'
import type {Endpoint} from '../../src/sim/proxy/registry.js'
import {serverSpan} from '../../src/sim/proxy/layers/server-span.js'
import {callService} from '../../src/sim/proxy/stack.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import type {TelemetrySink} from '../../src/sim/proxy/telemetry-sink.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {callContext, fromAsync, meshRequest} from '../helpers/proxy-context.js'

const endpoint = {instance: 'api-v1-0', service: 'api', version: 'v1'} as Endpoint

describe('server span layer', () => {
  test('each attempt records a new span id, parented on the client span, and the instance is told that id in traceparent', async () => {
    const spans: Span[] = []
    const seen: string[] = []
    const sink: TelemetrySink = {record: (s) => void spans.push(s)}
    const service = serverSpan(sink)(
      fromAsync(async (req) => {
        seen.push(req.headers['traceparent'] as string)
        return {status: 200, headers: [], body: null}
      }),
    )
    const ctx = callContext(new VirtualClock(), {endpoint})
    for (let attempt = 1; attempt <= 2; attempt++) {
      ctx.attempt = attempt
      await callService(service, meshRequest({headers: {traceparent: `00-${ctx.traceId}-${ctx.clientSpanId}-01`}}), ctx)
    }
    expect(spans).toHaveLength(2)
    for (const [i, span] of spans.entries()) {
      expect(span.kind).toBe('server')
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/)
      expect(span.spanId).not.toBe(ctx.clientSpanId)
      expect(span.parentId).toBe(ctx.clientSpanId)
      expect(span.traceId).toBe(ctx.traceId)
      expect(seen[i]).toBe(`00-${ctx.traceId}-${span.spanId}-01`)
    }
    expect(spans[0].spanId).not.toBe(spans[1].spanId)
  })
})
