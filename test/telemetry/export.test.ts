import {describe, expect, it} from 'vitest'
import {msToUnixNano, toOtlp} from '../../src/sim/telemetry/export-otlp.js'
import {toZipkin} from '../../src/sim/telemetry/export-zipkin.js'
import {shopTrace, T0} from './waterfall-fixture.js'

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/
const NANOS = /^(0|[1-9][0-9]*)$/

/** A structural check of the OTLP/JSON mapping (opentelemetry-proto, ExportTraceServiceRequest). */
function checkOtlp(doc: unknown): void {
  const body = doc as Record<string, unknown>
  expect(Object.keys(body)).toEqual(['resourceSpans'])
  expect(Array.isArray(body.resourceSpans)).toBe(true)
  for (const rs of body.resourceSpans as Array<Record<string, any>>) {
    const attrs = rs.resource.attributes as Array<{key: string; value: Record<string, unknown>}>
    checkAttributes(attrs)
    expect(attrs.find((a) => a.key === 'service.name')?.value.stringValue).toEqual(expect.any(String))
    for (const ss of rs.scopeSpans) {
      expect(ss.scope.name).toBe('meshsim')
      for (const span of ss.spans) {
        expect(span.traceId).toMatch(HEX32)
        expect(span.spanId).toMatch(HEX16)
        if ('parentSpanId' in span) expect(span.parentSpanId).toMatch(HEX16)
        expect(Number.isInteger(span.kind)).toBe(true)
        expect([2, 3]).toContain(span.kind)
        expect(span.startTimeUnixNano).toMatch(NANOS)
        expect(span.endTimeUnixNano).toMatch(NANOS)
        expect(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano)).toBe(true)
        expect(Number.isInteger(span.status.code)).toBe(true)
        expect([0, 1, 2]).toContain(span.status.code)
        checkAttributes(span.attributes)
      }
    }
  }
}

function checkAttributes(attrs: Array<{key: string; value: Record<string, unknown>}>): void {
  for (const a of attrs) {
    expect(typeof a.key).toBe('string')
    const kinds = Object.keys(a.value)
    expect(kinds).toHaveLength(1)
    const [kind] = kinds
    expect(['stringValue', 'intValue', 'doubleValue', 'boolValue']).toContain(kind)
    if (kind === 'intValue') expect(a.value.intValue).toMatch(/^-?\d+$/)
  }
}

describe('OTLP/JSON export', () => {
  it('follows the OTLP JSON mapping: resourceSpans → scopeSpans → spans, hex ids, integer enums, ns strings', () => {
    const doc = JSON.parse(JSON.stringify(toOtlp(shopTrace())))
    checkOtlp(doc)
    // one resource per service instance
    const names = doc.resourceSpans.map((r: any) => r.resource.attributes.find((a: any) => a.key === 'service.name').value.stringValue)
    expect(names).toEqual(['frontend', 'catalog', 'inventory', 'cart'])
  })

  it('maps kinds, status and HTTP semantic-convention attributes', () => {
    const doc = toOtlp(shopTrace())
    const spans = doc.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const attrs = (id: string) => Object.fromEntries(byId.get(id)!.attributes.map((a) => [a.key, Object.values(a.value)[0]]))
    const root = byId.get('a000000000000001')!
    expect(root).toMatchObject({kind: 2, status: {code: 0}, startTimeUnixNano: `${T0}000000`, endTimeUnixNano: `${T0 + 120}000000`})
    expect(root.parentSpanId).toBeUndefined()
    expect(attrs('a000000000000001')).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': '200',
      'url.path': '/checkout',
      'server.address': 'frontend',
    })
    const faulted = byId.get('b000000000000001')!
    expect(faulted).toMatchObject({kind: 3, parentSpanId: 'a000000000000001', status: {code: 2, message: 'fault injected: abort with 503'}})
    expect(attrs('b000000000000001')).toMatchObject({
      'server.address': 'catalog',
      'mesh.attempt': '1',
      'mesh.response_flags': 'FI',
      'mesh.fault': 'abort 503 (10%)',
      'error.type': 'FI',
    })
    expect(byId.get('f100000000000001')!.status.code).toBe(2) // no response at all
  })

  it('writes nanoseconds without the rounding of ms × 1e6 in a double', () => {
    expect(msToUnixNano(1_700_000_000_123.25)).toBe('1700000000123250000')
    // a double near 1.7e12 ms holds ~0.25 µs: sub-millisecond parts survive to within that
    const ns = BigInt(msToUnixNano(1_700_000_000_123.456789))
    expect(Number(ns - 1700000000123456789n)).toBeLessThan(300)
    expect(Number(ns - 1700000000123456789n)).toBeGreaterThan(-300)
    expect(msToUnixNano(1_700_000_000_000)).toBe('1700000000000000000')
    expect(msToUnixNano(0.5)).toBe('500000')
  })
})

describe('Zipkin v2 export', () => {
  it('has the Zipkin v2 span shape with microsecond integers and string tags', () => {
    const spans = JSON.parse(JSON.stringify(toZipkin(shopTrace())))
    expect(spans).toHaveLength(8)
    for (const s of spans) {
      expect(s.traceId).toMatch(HEX32)
      expect(s.id).toMatch(HEX16)
      if ('parentId' in s) expect(s.parentId).toMatch(HEX16)
      expect(['CLIENT', 'SERVER']).toContain(s.kind)
      expect(Number.isInteger(s.timestamp)).toBe(true)
      expect(Number.isInteger(s.duration)).toBe(true)
      expect(s.duration).toBeGreaterThan(0)
      expect(typeof s.localEndpoint.serviceName).toBe('string')
      for (const v of Object.values(s.tags)) expect(typeof v).toBe('string')
    }
    const retry = spans.find((s: any) => s.id === 'b000000000000002')
    expect(retry).toMatchObject({
      kind: 'CLIENT',
      parentId: 'a000000000000001',
      timestamp: (T0 + 28) * 1000,
      duration: 60_000,
      localEndpoint: {serviceName: 'frontend'},
      remoteEndpoint: {serviceName: 'catalog'},
      tags: {'http.method': 'GET', 'http.path': '/items', 'http.status_code': '200', 'mesh.attempt': '2'},
    })
    expect(spans.find((s: any) => s.id === 'f000000000000001').tags.error).toContain('upstream timeout')
    expect(spans.find((s: any) => s.id === 'a000000000000001').tags.error).toBeUndefined()
  })
})

describe('a cold start in the exports', () => {
  const held = () => {
    const spans = shopTrace()
    // The retried call to catalog waited 40.5 ms for an instance to start.
    spans[2] = {...spans[2], coldStartMs: 40.5}
    return spans
  }

  it('OTLP: the attribute mesh.cold_start_ms and an event where the instance was ready; none on a warm span', () => {
    const doc = JSON.parse(JSON.stringify(toOtlp(held())))
    checkOtlp(doc)
    const spans = doc.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans))
    const cold = spans.find((s: any) => s.spanId === 'b000000000000002')
    expect(cold.attributes).toContainEqual({key: 'mesh.cold_start_ms', value: {doubleValue: 40.5}})
    expect(cold.events).toEqual([{timeUnixNano: msToUnixNano(T0 + 28 + 40.5), name: 'mesh.cold_start.ready', attributes: []}])
    const warm = spans.find((s: any) => s.spanId === 'b000000000000001')
    expect(warm.attributes.some((a: any) => a.key === 'mesh.cold_start_ms')).toBe(false)
    expect(warm.events).toBeUndefined()
  })

  it('Zipkin: the tag mesh.cold_start_ms and an annotation in microseconds', () => {
    const spans = toZipkin(held())
    const cold = spans.find((s) => s.id === 'b000000000000002')!
    expect(cold.tags['mesh.cold_start_ms']).toBe('40.5')
    expect(cold.annotations).toEqual([{timestamp: (T0 + 28 + 40.5) * 1000, value: 'mesh.cold_start.ready'}])
    expect(spans.find((s) => s.id === 'b000000000000001')!.annotations).toBeUndefined()
  })
})
