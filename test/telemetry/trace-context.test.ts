import {describe, expect, test} from 'vitest'
import {formatTraceparent, newSpanId, newTraceId, parseTraceparent} from '../../src/sim/telemetry/trace-context.js'

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
