// Traces on disk (mesh sim --traces FILE) read back into a store as the daemon's are.
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {renderWaterfall} from '../../src/sim/telemetry/waterfall.js'
import {findTraceInFile, parseTraceFile, readTraceFile, TraceFileWriter, traceStoreOf} from '../../src/sim/virtual/trace-file.js'

const dir = mkdtempSync(path.join(tmpdir(), 'trace-file-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const tid = (n: number) => n.toString(16).padStart(32, '0')
const sid = (n: number) => n.toString(16).padStart(16, '0')

/** ingress → frontend → payments, virtual ms from 0; payments failed once and was retried. */
function trace(n: number, start: number): Span[] {
  return [
    {traceId: tid(n), spanId: sid(n * 10 + 1), kind: 'client', name: 'GET /checkout', service: 'ingress', peerService: 'frontend',
      method: 'GET', path: '/checkout', status: 200, startMs: start, durationMs: 40},
    {traceId: tid(n), spanId: sid(n * 10 + 2), parentId: sid(n * 10 + 1), kind: 'server', name: 'GET /checkout', service: 'frontend',
      peerService: 'ingress', method: 'GET', path: '/checkout', status: 200, startMs: start + 0.1, durationMs: 39.8},
    {traceId: tid(n), spanId: sid(n * 10 + 3), parentId: sid(n * 10 + 2), kind: 'client', name: 'POST /pay', service: 'frontend',
      peerService: 'payments', method: 'POST', path: '/pay', status: 503, startMs: start + 1, durationMs: 10, attempt: 1, responseFlags: 'URX',
      decision: {candidates: ['payments-v1-0', 'payments-v1-1'], chosen: 'payments-v1-0', attempts: 2, retryBudgetLeft: 3}},
    {traceId: tid(n), spanId: sid(n * 10 + 4), parentId: sid(n * 10 + 2), kind: 'client', name: 'POST /pay', service: 'frontend',
      peerService: 'payments', method: 'POST', path: '/pay', status: 200, startMs: start + 12, durationMs: 20, attempt: 2},
  ]
}

describe('trace files', () => {
  it('write one span per line as they come and read back the same spans', async () => {
    // A failed, slow third request: its entry span (the ingress's) says 503.
    const failed = trace(3, 2000).map((s) => (s.service === 'ingress' ? {...s, status: 503, durationMs: 90} : s))
    const spans = [...trace(1, 0), ...trace(2, 1000), ...failed]
    const file = path.join(dir, 'sim.jsonl')
    const writer = new TraceFileWriter(file)
    spans.forEach(writer.record)
    writer.close()
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(spans.length + 1)
    expect(await readTraceFile(file)).toEqual(spans)
    expect(writer).toMatchObject({spans: 12, traces: 3, slowest: {traceId: tid(3), durationMs: 90}, firstFailed: {traceId: tid(3)}})
  })

  it('hold one chunk in memory, not the run', () => {
    const file = path.join(dir, 'big.jsonl')
    const writer = new TraceFileWriter(file)
    for (let i = 1; i <= 5000; i++) trace(i, i).forEach(writer.record)
    // Flushed as it went: most of the file is on disk before close.
    expect(statSync(file).size).toBeGreaterThan(1 << 20)
    writer.close()
    expect(parseTraceFile(readFileSync(file, 'utf8'), file)).toHaveLength(20_000)
    expect(() => new TraceFileWriter(path.join(dir, 'no-such-dir', 'x.jsonl'))).toThrow(expect.objectContaining({code: 'MESH_BAD_FLAG', message: expect.stringContaining('cannot write it')}))
  })

  it('read a JSON array of spans too (what `mesh trace ID --json` prints)', () => {
    const spans = trace(3, 0)
    expect(parseTraceFile(JSON.stringify(spans, null, 2), 'one.json')).toEqual(spans)
  })

  it('fill a store that lists and finds traces as the daemon\'s does', () => {
    const spans = [...trace(1, 0), ...trace(2, 1000)]
    const store = traceStoreOf(spans)
    const list = store.list()
    expect(list.map((t) => t.traceId)).toEqual([tid(2), tid(1)])
    expect(list[1]).toMatchObject({entry: 'frontend', complete: true, status: 200, error: false, errorSpans: 1, spanCount: 4})
    // A unique prefix, in any case, as `mesh traces` prints ids.
    expect(findTraceInFile([...spans, ...trace(0xab, 5)], tid(0xab).slice(0, 31).toUpperCase(), 'sim.jsonl')).toEqual(trace(0xab, 5))
  })

  it('keep every span of a big file: no store bound applies', () => {
    const spans = Array.from({length: 20_000}, (_, i) => trace(i + 1, i)).flat()
    expect(traceStoreOf(spans).stats()).toMatchObject({traces: 20_000, spans: 80_000, evictedTraces: 0, droppedSpans: 0})
  })

  it('draw a simulated request\'s waterfall with its retry and decision', () => {
    const out = renderWaterfall(findTraceInFile(trace(1, 0), tid(1).slice(0, 12), 'sim.jsonl'), {width: 100, colour: false, why: true})
    expect(out).toContain('→ payments POST /pay')
    expect(out).toContain('(attempt 2)')
    expect(out).toContain('why: chose payments-v1-0 of [payments-v1-0, payments-v1-1]; 2 tries')
  })

  it('say which trace is missing from which file, and which line is not a span', async () => {
    expect(() => findTraceInFile(trace(1, 0), 'ffff', 'sim.jsonl')).toThrow(expect.objectContaining({code: 'MESH_TRACE_NOT_FOUND', message: 'no trace ffff in sim.jsonl.'}))
    const both = [...trace(0x10, 0), ...trace(0x11, 0)]
    expect(() => findTraceInFile(both, tid(0x10).slice(0, 30), 'sim.jsonl')).toThrow(expect.objectContaining({code: 'MESH_TRACE_AMBIGUOUS'}))
    const bad = path.join(dir, 'bad.jsonl')
    writeFileSync(bad, `${JSON.stringify(trace(1, 0)[0])}\n\n{"hello": 1}\n`)
    await expect(readTraceFile(bad)).rejects.toMatchObject({code: 'MESH_BAD_FLAG', message: `--traces ${bad}:3: not a span (it needs traceId, spanId and startMs)`})
    writeFileSync(bad, '{not json\n')
    await expect(readTraceFile(bad)).rejects.toMatchObject({message: expect.stringMatching(/:1: not JSON/)})
    await expect(readTraceFile(path.join(dir, 'absent.jsonl'))).rejects.toMatchObject({code: 'MESH_BAD_FLAG', message: expect.stringContaining('cannot read it')})
  })
})
