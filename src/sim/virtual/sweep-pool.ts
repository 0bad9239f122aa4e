// A sweep's cells in parallel: a bounded pool of worker threads (one per core at most), each
// running one cell at a time and taking the next as it finishes. A cell is a pure function of
// its job (the file's text, the keys set, the load, the seed), so where it ran changes
// nothing in its result; results come back in the cells' order whatever order they finish in.
//
//   main ──{index, job}──▶ worker ──runCell(job)──▶ {index, ok, result | error} ──▶ main
//
// Without a worker script next to this module (the TypeScript sources under a test runner,
// which workers cannot load) or with one cell or one core, the cells run here, one by one.
import {existsSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import {ConfigError} from '../config/config-error.js'
import type {ConfigIssue} from '../config/types.js'
import {MeshError} from '../errors.js'

/** What crosses the thread boundary for a failed cell: enough to throw the same error again. */
export interface CellFailure {
  name: string
  message: string
  code?: string
  hints?: string[]
  issues?: ConfigIssue[]
}

export type CellReply<R> = {index: number; ok: true; result: R} | {index: number; ok: false; error: CellFailure}

export function describeFailure(error: unknown): CellFailure {
  if (error instanceof ConfigError) return {name: error.name, message: error.message, code: error.code, hints: error.hints, issues: error.issues}
  if (error instanceof MeshError) return {name: error.name, message: error.message, code: error.code, hints: error.hints}
  const e = error instanceof Error ? error : new Error(String(error))
  return {name: e.name, message: e.stack ?? e.message}
}

/** The error a worker reported, as the main thread throws it (a ConfigError stays one, so the CLI prints its issues). */
export function failureError(f: CellFailure): Error {
  if (f.issues) {
    const error = new ConfigError(f.issues)
    error.hints.splice(0, error.hints.length, ...(f.hints ?? []))
    return error
  }
  if (f.code) return new MeshError(f.code, f.message, {hints: f.hints})
  const error = new Error(f.message)
  error.name = f.name
  return error
}

export interface PoolOptions<J, R> {
  /** Runs one cell here: the fallback, and what a worker runs. */
  inProcess: (job: J) => Promise<R> | R
  /** The worker script (it answers {index, job} with a CellReply); absent or missing: in process. */
  worker?: URL
  /** At most this many threads (default: the cores, os.availableParallelism()). */
  parallel?: number
  /** Told as each cell finishes, for a progress line. */
  onDone?: (done: number, total: number) => void
}

/** Threads a sweep of `cells` uses: one per core, no more than there are cells; 1 means in process. */
export function poolSize(cells: number, parallel = availableParallelism()): number {
  return Math.max(1, Math.min(cells, Math.floor(parallel)))
}

export async function runPool<J, R>(jobs: readonly J[], opts: PoolOptions<J, R>): Promise<R[]> {
  const size = poolSize(jobs.length, opts.parallel)
  const script = opts.worker && existsSync(fileURLToPath(opts.worker)) ? opts.worker : undefined
  if (size <= 1 || !script) {
    const out: R[] = []
    for (const job of jobs) {
      out.push(await opts.inProcess(job))
      opts.onDone?.(out.length, jobs.length)
    }
    return out
  }
  return new Promise<R[]>((resolve, reject) => {
    const results: R[] = new Array(jobs.length)
    const workers: Worker[] = []
    /** Workers let go because no cell was left for them: their exit is no failure. */
    const retired = new Set<Worker>()
    let next = 0
    let done = 0
    let failed = false
    const stop = (error: Error) => {
      if (failed) return
      failed = true
      for (const w of workers) void w.terminate()
      reject(error)
    }
    const feed = (worker: Worker) => {
      if (next >= jobs.length) {
        retired.add(worker)
        void worker.terminate()
        return
      }
      const index = next++
      worker.postMessage({index, job: jobs[index]})
    }
    for (let i = 0; i < size; i++) {
      const worker = new Worker(script, {execArgv: []})
      workers.push(worker)
      worker.on('message', (reply: CellReply<R>) => {
        if (failed) return
        if (!reply.ok) return stop(failureError(reply.error))
        results[reply.index] = reply.result
        done++
        opts.onDone?.(done, jobs.length)
        if (done === jobs.length) {
          for (const w of workers) {
            retired.add(w)
            void w.terminate()
          }
          resolve(results)
        } else feed(worker)
      })
      worker.once('error', (error) => stop(error))
      worker.once('exit', (code) => {
        if (!failed && !retired.has(worker) && done < jobs.length) stop(new Error(`a sweep worker stopped (exit ${code}) before its cell was done`))
      })
      feed(worker)
    }
  })
}
