// mesh sim's output steps around a run: the series and traces files, and what it says of them.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {DEFAULT_TRACE_EVERY, finishRun, outputOptions, runSweepFlags} from '../../src/cli/sim-output.js'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {stableJson} from '../../src/sim/virtual/stable-json.js'
import {findTraceInFile, readTraceFile, traceStoreOf} from '../../src/sim/virtual/trace-file.js'
import {TINY_FILE, TINY_SOURCE, tinyConfig} from './tiny-mesh.js'

const dir = mkdtempSync(path.join(tmpdir(), 'sim-output-flags-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const config = tinyConfig()

describe('mesh sim output', () => {
  it('writes sampled requests\' spans as the run records them, and says which trace to look at', async () => {
    const traces = path.join(dir, 'traces.jsonl')
    const series = path.join(dir, 'series.csv')
    const flags = {traces, series, 'trace-every': 10, step: 500}
    const {options, traces: writer} = outputOptions(flags)
    expect(options.traceSampleEvery).toBe(10)
    const result = await runSimulation(config, {shape: constantShape(100, 2000), seed: 3, ...options})
    const notes: string[] = []
    const out = await finishRun(result, flags, writer, (l) => notes.push(l))
    expect(stableJson(out)).toBe(stableJson(result))

    const spans = await readTraceFile(traces)
    const store = traceStoreOf(spans)
    // One request in ten of 200: twenty traces, each from the ingress through frontend to payments.
    expect(store.stats().traces).toBe(20)
    expect(writer!.traces).toBe(20)
    // `mesh traces` shows 12 digits of an id and `mesh trace` takes them as a prefix: they must tell traces apart.
    expect(new Set(store.list().map((t) => t.traceId.slice(0, 12))).size).toBe(20)
    const [first] = store.list()
    expect(first.services).toEqual(expect.arrayContaining(['ingress', 'frontend', 'payments']))
    expect(notes[1]).toBe(`Wrote 20 traces (${spans.length} spans; one request in 10) to ${traces}. List them: mesh traces --traces ${traces}`)
    const failed = notes.find((n) => n.includes('a failed one'))
    const slowest = notes.find((n) => n.includes('the slowest'))!
    // One in five of payments' calls fails and frontend does not retry: some request failed on the way.
    expect(failed ?? slowest).toBeDefined()
    const id = slowest.split(' ').at(-1)!
    expect(findTraceInFile(spans, id, traces).length).toBeGreaterThanOrEqual(4)

    const csv = readFileSync(series, 'utf8').split('\n')
    expect(csv[0]).toBe('atMs,service,rps,successRate,p99,queueDepth')
    // Two services, four half-second steps.
    expect(csv.filter((l) => l !== '')).toHaveLength(1 + 2 * 4)
    expect(notes[0]).toBe(`Wrote the series (8 points, one per service per 500ms) to ${series}.`)
  })

  it('keeps no trace without --traces, and one in a hundred by default with it', () => {
    expect(outputOptions({step: 1000}).options).toEqual({seriesStepMs: 1000, traceSampleEvery: undefined, onSpan: undefined})
    const {options, traces} = outputOptions({step: 1000, traces: path.join(dir, 'default.jsonl')})
    expect(options.traceSampleEvery).toBe(DEFAULT_TRACE_EVERY)
    traces!.close()
  })
})

describe('mesh sim --vary', () => {
  it('runs the grid the flags give, telling the progress line where it is', async () => {
    const lines: string[] = []
    const flags = {step: 1000, vary: ['services.payments.versions.v1.simulate.errorRate=0,0.5', 'load.rps=20,40'], metrics: 'successRate, payments.actualRequests'}
    const sweep = await runSweepFlags(flags, {file: TINY_FILE, source: TINY_SOURCE, load: {rps: 10, durationMs: 1000}, options: {seed: 2}}, (l) => lines.push(l))
    expect(lines).toEqual([
      'Sweeping 4 cells (2 × 2)…',
      'Sweeping 4 cells (2 × 2)… 1/4 done',
      'Sweeping 4 cells (2 × 2)… 2/4 done',
      'Sweeping 4 cells (2 × 2)… 3/4 done',
      'Sweeping 4 cells (2 × 2)… 4/4 done',
    ])
    expect(sweep.metrics).toEqual(['successRate', 'payments.actualRequests'])
    expect(sweep.cells.map((c) => c.result.ingressRequests)).toEqual([20, 40, 20, 40])
    expect(sweep.cells[0].metrics.successRate).toBe(1)
    expect(sweep.cells[2].metrics.successRate!).toBeLessThan(1)
  })
})
