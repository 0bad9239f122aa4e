import {describe, expect, test} from 'vitest'
import {formatTraceparent, newRequestId, newSpanId, newTraceId, parseTraceparent} from '../../src/sim/telemetry/trace-context.js'

describe('W3C traceparent', () => {
  const valid = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

  test('parses a valid header and formats it back unchanged', () => {
    const ctx = parseTraceparent(valid)
    expect(ctx).toEqual({traceId: '0af7651916cd43dd8448eb211c80319c', parentId: 'b7ad6b7169203331', flags: '01'})
    expect(formatTraceparent(ctx!)).toBe(valid)
  })

  test.each([
    ['all-zero trace id', '00-00000000000000000000000000000000-b7ad6b7169203331-01'],
    ['all-zero parent id', '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01'],
    ['uppercase hex', '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01'],
    ['version ff', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ['short trace id', '00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01'],
    ['extra fields on version 00', `${valid}-extra`],
    ['garbage', 'hello'],
  ])('rejects %s, so a new trace starts', (_name, value) => {
    expect(parseTraceparent(value)).toBeUndefined()
  })

  test('accepts a future version with extra fields, as the spec asks', () => {
    expect(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what')?.traceId).toBe('0af7651916cd43dd8448eb211c80319c')
  })

  test('new ids are lowercase hex of the right length and differ', () => {
    const ids = new Set(Array.from({length: 1000}, newSpanId))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/)
    expect(newTraceId()).toMatch(/^[0-9a-f]{32}$/)
  })
})

describe('request ids', () => {
  test('are UUID v4 strings, different across batches', () => {
    const ids = Array.from({length: 300}, () => newRequestId())
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(new Set(ids).size).toBe(ids.length)
  })
})

describe('B3', () => {
  const h = (m: Record<string, string>) => (name: string) => m[name]

  test('single and multi header forms are accepted; a 64-bit trace id is padded', async () => {
    const {parseB3} = await import('../../src/sim/telemetry/trace-context.js')
    expect(parseB3(h({b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90'}))).toEqual({
      traceId: '80f198ee56343ba864fe8b2a57d3eff7',
      parentId: 'e457b5a2e4d86bd1',
      flags: '01',
    })
    expect(parseB3(h({'x-b3-traceid': '64fe8b2a57d3eff7', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '0'}))).toEqual({
      traceId: '000000000000000064fe8b2a57d3eff7',
      parentId: 'e457b5a2e4d86bd1',
      flags: '00',
    })
    expect(parseB3(h({b3: '1'}))).toBeUndefined()
    expect(parseB3(h({'x-b3-traceid': 'nothex', 'x-b3-spanid': 'e457b5a2e4d86bd1'}))).toBeUndefined()
  })

  test('forwarded B3 headers name the new span, keeping the app’s id width', async () => {
    const {forwardB3} = await import('../../src/sim/telemetry/trace-context.js')
    const headers: Record<string, string> = {'x-b3-traceid': '64fe8b2a57d3eff7', 'x-b3-spanid': 'old', b3: 'x'}
    forwardB3(headers, '000000000000000064fe8b2a57d3eff7', '1111111111111111', '2222222222222222', '01')
    expect(headers).toEqual({
      b3: '000000000000000064fe8b2a57d3eff7-1111111111111111-1-2222222222222222',
      'x-b3-traceid': '64fe8b2a57d3eff7',
      'x-b3-spanid': '1111111111111111',
      'x-b3-parentspanid': '2222222222222222',
      'x-b3-sampled': '1',
    })
  })
})
