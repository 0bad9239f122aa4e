import {describe, expect, it} from 'vitest'
import {formatDuration, formatSize, missingUnit, parseDuration, parseRate, parseSize} from '../../src/sim/config/duration.js'

describe('parseDuration', () => {
  it('reads the units people write in mesh.yaml', () => {
    expect(parseDuration('300ms')).toBe(300)
    expect(parseDuration('1s')).toBe(1000)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('2m')).toBe(120_000)
    expect(parseDuration('2min')).toBe(120_000)
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('1m30s')).toBe(90_000)
    expect(parseDuration('0s')).toBe(0)
  })

  it('refuses a number without its unit (3 ms or 3 s?), except 0, and says what to write', () => {
    for (const bare of [250, '250', '3', 1.5, '.5']) expect(parseDuration(bare), String(bare)).toBeUndefined()
    expect(parseDuration(0)).toBe(0)
    expect(parseDuration('0')).toBe(0)
    expect(missingUnit('3')).toBe(' (a duration needs a unit: ms, s, m or h; did you mean 3ms or 3s?)')
    expect(missingUnit(250)).toContain('250ms or 250s')
    for (const other of ['3x', 'fast', '300ms', '', undefined]) expect(missingUnit(other), String(other)).toBe('')
  })

  it('rejects what is not a duration', () => {
    for (const bad of ['', 'fast', '1 s', '1x', 's', '-1s', '1s2', 'ms', '1.s', '1e3ms']) expect(parseDuration(bad), bad).toBeUndefined()
    expect(parseDuration(-1)).toBeUndefined()
    expect(parseDuration(Number.NaN)).toBeUndefined()
    expect(parseDuration(Infinity)).toBeUndefined()
  })

  it('does not let float error leak in (1.1s is 1100ms, not 1100.0000000000002)', () => {
    expect(parseDuration('1.1s')).toBe(1100)
    expect(parseDuration('0.3s')).toBe(300)
  })
})

describe('formatDuration', () => {
  it('picks the largest unit that says the value exactly', () => {
    expect(formatDuration(1500)).toBe('1.5s')
    expect(formatDuration(300)).toBe('300ms')
    expect(formatDuration(120_000)).toBe('2m')
    expect(formatDuration(3_600_000)).toBe('1h')
    expect(formatDuration(90_000)).toBe('90s')
    expect(formatDuration(0)).toBe('0ms')
    expect(formatDuration(0.5)).toBe('0.5ms')
  })

  it('round-trips every whole millisecond count through parseDuration (property-style)', () => {
    // A deterministic spread: small values, round values, and awkward ones.
    const samples = [0, 1, 999, 1000, 1001, 59_999, 60_000, 61_000, 3_599_999, 3_600_000, 7_200_000]
    let x = 12345
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      samples.push(x % 10_000_000)
    }
    for (const ms of samples) expect(parseDuration(formatDuration(ms)), String(ms)).toBe(ms)
  })
})

describe('parseRate', () => {
  it('reads requests per period, with any duration after the slash', () => {
    expect(parseRate('200/s')).toEqual({requests: 200, periodMs: 1000})
    expect(parseRate('10/m')).toEqual({requests: 10, periodMs: 60_000})
    expect(parseRate('10/min')).toEqual({requests: 10, periodMs: 60_000})
    expect(parseRate('5/h')).toEqual({requests: 5, periodMs: 3_600_000})
    expect(parseRate('20/100ms')).toEqual({requests: 20, periodMs: 100})
    expect(parseRate('3/2s')).toEqual({requests: 3, periodMs: 2000})
  })

  it('rejects rates without a period, with a zero period or zero requests', () => {
    for (const bad of ['200', '200/', '/s', '200/x', '0/s', '5/0s', '5/100', 'many/s']) expect(parseRate(bad), bad).toBeUndefined()
    expect(parseRate(200)).toBeUndefined()
  })
})

describe('parseSize', () => {
  it('reads bytes, kb, mb (1024-based)', () => {
    expect(parseSize(512)).toBe(512)
    expect(parseSize('512b')).toBe(512)
    expect(parseSize('1kb')).toBe(1024)
    expect(parseSize('1.5kb')).toBe(1536)
    expect(parseSize('2mb')).toBe(2 * 1024 * 1024)
    expect(parseSize('1KB')).toBe(1024)
  })

  it('rejects negative, fractional byte counts and unknown units', () => {
    for (const bad of ['1tb', 'big', '', '-1kb']) expect(parseSize(bad), bad).toBeUndefined()
    expect(parseSize(1.5)).toBeUndefined()
    expect(parseSize(-1)).toBeUndefined()
  })

  it('agrees with the unit table for every small count (property-style)', () => {
    for (let n = 0; n < 300; n++) {
      expect(parseSize(`${n}b`)).toBe(n)
      expect(parseSize(`${n}kb`)).toBe(n * 1024)
      expect(parseSize(`${n}mb`)).toBe(n * 1024 * 1024)
    }
  })
})

describe('formatSize', () => {
  it('writes bytes in the largest unit parseSize reads back', () => {
    expect([0, 512, 1536, 3 * 1024 ** 2, 5 * 1024 ** 3].map(formatSize)).toEqual(['0b', '512b', '1.5kb', '3mb', '5gb'])
    for (const n of [512, 1536, 3 * 1024 ** 2]) expect(parseSize(formatSize(n))).toBe(n)
  })
})
