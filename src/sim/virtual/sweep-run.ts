// Running a sweep: every cell checked here first (a bad key or value is refused before any
// run starts, with mesh validate's words), then the cells on the pool's threads, each one
// `runSimulation` of the file with its keys set, the same seed and flags otherwise.
import {expectedArrivals, type ShapeRequest} from '../load/arrival-schedule.js'
import {runSimulation} from './simulation.js'
import type {SimOptions} from './sim-result.js'
import {runPool} from './sweep-pool.js'
import {
  cellResult, checkVaryKey, configFor, loadFor, MAX_CELLS, type MetricColumn, metricColumns, sweepCells, type SweepCell, type SweepCellResult,
  type SweepResult, type VaryAxis,
} from './sweep.js'
import {MeshError} from '../errors.js'

/** One cell, as it crosses to a worker thread: plain data only. */
export interface SweepJob {
  file: string
  /** mesh.yaml's text, read once by the main thread. */
  source: string
  cell: SweepCell
  load: ShapeRequest
  options: Omit<SimOptions, 'shape' | 'onSpan' | 'traceSampleEvery'>
  columns: MetricColumn[]
}

export async function runSweepCell(job: SweepJob): Promise<SweepCellResult> {
  const config = configFor(job.source, job.file, job.cell)
  const result = await runSimulation(config, {...job.options, shape: loadFor(job.load, job.cell)})
  return cellResult(job.cell, result, job.columns, config)
}

export interface SweepRequest {
  file: string
  source: string
  axes: VaryAxis[]
  load: ShapeRequest
  options: SweepJob['options']
  metrics: readonly string[]
  /** At most this many threads (default: one per core). */
  parallel?: number
  onDone?: (done: number, total: number) => void
}

/** Below this many ingress requests in all, the cells run in this thread. */
export const SMALL_SWEEP_REQUESTS = 20_000

export async function runSweep(r: SweepRequest): Promise<SweepResult> {
  const base = configFor(r.source, r.file, [])
  for (const axis of r.axes) checkVaryKey(axis.key, base)
  if (r.options.scenario && r.axes.some((a) => a.key.startsWith('load.'))) {
    throw new MeshError('MESH_BAD_FLAG', `--vary ${r.axes.find((a) => a.key.startsWith('load.'))!.key}: with --scenario the scenario's load: is the load; vary its file instead.`)
  }
  const columns = metricColumns(r.metrics, base)
  const cells = sweepCells(r.axes)
  if (cells.length > MAX_CELLS) {
    throw new MeshError('MESH_BAD_FLAG', `--vary: ${cells.length} cells is more than ${MAX_CELLS}.`, {hints: ['Vary fewer keys or fewer values at once.']})
  }
  // Every cell's config and load checked before the first run, so a typo in the last
  // value does not cost the runs before it.
  let requests = 0
  for (const cell of cells) {
    configFor(r.source, r.file, cell)
    requests += r.options.scenario ? SMALL_SWEEP_REQUESTS : expectedArrivals(loadFor(r.load, cell))
  }
  const jobs: SweepJob[] = cells.map((cell) => ({file: r.file, source: r.source, cell, load: r.load, options: r.options, columns}))
  // A thread costs its start (loading the modules again, ~0.3 s): a small sweep is done sooner here.
  const parallel = requests < SMALL_SWEEP_REQUESTS ? 1 : r.parallel
  const results = await runPool(jobs, {inProcess: runSweepCell, worker: new URL('./sweep-worker.js', import.meta.url), parallel, onDone: r.onDone})
  return {seed: r.options.seed, vary: r.axes, metrics: columns.map((c) => c.label), cells: results}
}
