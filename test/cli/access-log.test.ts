// `mesh logs --access` lines: one compact line per JSON record the sidecars write.
import {describe, expect, test} from 'vitest'
import {renderAccessLines} from '../../src/cli/access-log.js'

const record = (o: Record<string, unknown> = {}) =>
  JSON.stringify({
    time: '2024-05-01T12:00:00.123Z',
    side: 'outbound',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    source: 'frontend-v1-0',
    destination: 'catalog-v1-1',
    method: 'GET',
    path: '/items?page=2',
    status: 200,
    durationMs: 12.34,
    attempt: 1,
    flags: '-',
    ...o,
  })

// The time column is local wall-clock time: compute it the same way for any TZ.
const local = (iso: string) => {
  const d = new Date(iso)
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

describe('renderAccessLines', () => {
  test('one line per record: time, side, source → destination, method path, status, duration, flags, short trace id', () => {
    expect(renderAccessLines([record()], false)).toEqual([
      `${local('2024-05-01T12:00:00.123Z')}  out  frontend-v1-0 → catalog-v1-1  GET /items?page=2  200  12.3ms  -  4bf92f3577b3`,
    ])
  })

  test('an inbound retry the mesh answered shows its flags, attempt and cause', () => {
    const [line] = renderAccessLines([record({side: 'inbound', status: 0, durationMs: 3, attempt: 2, flags: 'UC', cause: 'the instance closed the connection'})], false)
    expect(line).toBe(
      `${local('2024-05-01T12:00:00.123Z')}  in   frontend-v1-0 → catalog-v1-1  GET /items?page=2  ---  3.00ms  UC  4bf92f3577b3  attempt 2  (the instance closed the connection)`,
    )
  })

  test('blank lines are skipped; a line that is not a record is shown as it is, never dropped or thrown on', () => {
    expect(renderAccessLines(['', 'not json', '{"torn": ', '42', '{"source": 1}', '  '], false)).toEqual(['not json', '{"torn": ', '42', '{"source": 1}'])
  })

  test('missing fields get placeholders', () => {
    const [line] = renderAccessLines([JSON.stringify({source: 'ingress', destination: 'frontend', method: 'POST'})], false)
    expect(line).toBe('??:??:??.???  out  ingress → frontend  POST ?  ---  0.00ms  -  -')
  })

  test('colour only when asked: status by class, flags highlighted', () => {
    const plain = renderAccessLines([record({status: 503, flags: 'UH'})], false)[0]
    expect(plain).not.toMatch(/\x1b\[/)
    const coloured = renderAccessLines([record({status: 503, flags: 'UH'})], true)[0]
    expect(coloured).toContain('\x1b[31m503\x1b[39m')
    expect(coloured).toContain('\x1b[35mUH\x1b[39m')
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain)
  })
})
