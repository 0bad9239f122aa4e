// The sweep's pool of worker threads: bounded, results in the cells' order, failures as the CLI expects them.
import {describe, expect, it} from 'vitest'
import {ConfigError} from '../../src/sim/config/config-error.js'
import {MeshError} from '../../src/sim/errors.js'
import {describeFailure, failureError, poolSize, runPool} from '../../src/sim/virtual/sweep-pool.js'

const WORKER = new URL('../fixtures/sweep-echo-worker.js', import.meta.url)
type Job = {n: number; delayMs?: number; fail?: string; exit?: number}
type Out = {square: number; thread: number}
const inProcess = (job: Job): Out => ({square: job.n * job.n, thread: 0})

describe('sweep pool', () => {
  it('uses one thread per core at most, never more than there are cells', () => {
    expect(poolSize(10, 4)).toBe(4)
    expect(poolSize(2, 8)).toBe(2)
    expect(poolSize(0, 8)).toBe(1)
    expect(poolSize(5, 1)).toBe(1)
  })

  it('gives results in the cells\' order whatever order the threads finish in', async () => {
    // The first cells are the slowest: they finish last.
    const jobs: Job[] = Array.from({length: 7}, (_, i) => ({n: i, delayMs: (7 - i) * 15}))
    const progress: number[] = []
    const out = await runPool<Job, Out>(jobs, {inProcess, worker: WORKER, parallel: 3, onDone: (done) => progress.push(done)})
    expect(out.map((o) => o.square)).toEqual([0, 1, 4, 9, 16, 25, 36])
    const threads = new Set(out.map((o) => o.thread))
    expect(threads.size).toBe(3)
    expect(threads.has(0)).toBe(false)
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it('runs in process with one thread, or without a worker script', async () => {
    const jobs: Job[] = [{n: 2}, {n: 3}]
    expect(await runPool<Job, Out>(jobs, {inProcess, worker: WORKER, parallel: 1})).toEqual([{square: 4, thread: 0}, {square: 9, thread: 0}])
    const missing = new URL('../fixtures/no-such-worker.js', import.meta.url)
    expect(await runPool<Job, Out>(jobs, {inProcess, worker: missing, parallel: 4})).toEqual([{square: 4, thread: 0}, {square: 9, thread: 0}])
  })

  it('fails with the cell\'s own error, and with a clear one when a thread dies', async () => {
    const failing: Job[] = [{n: 1, delayMs: 50}, {n: 2, fail: 'cell 2 is wrong'}, {n: 3}]
    await expect(runPool<Job, Out>(failing, {inProcess, worker: WORKER, parallel: 2})).rejects.toMatchObject({code: 'MESH_BAD_FLAG', message: 'cell 2 is wrong', hints: ['a hint']})
    await expect(runPool<Job, Out>([{n: 1, delayMs: 50}, {n: 2, exit: 3}], {inProcess, worker: WORKER, parallel: 2})).rejects.toThrow(/a sweep worker stopped \(exit 3\)/)
  })

  it('carries a ConfigError across the thread boundary as one, issues and hints included', () => {
    const issue = {file: '/x/mesh.yaml', line: 3, column: 5, path: 'services.a.replicas', message: 'expected a positive integer', severity: 'error' as const}
    const original = new ConfigError([issue])
    original.hints.unshift('In the sweep\'s cell services.a.replicas=0 (--vary).')
    const back = failureError(structuredClone(describeFailure(original)))
    expect(back).toBeInstanceOf(ConfigError)
    expect(back).toMatchObject({code: 'MESH_CONFIG_INVALID', message: original.message, issues: [issue], hints: original.hints})
    const mesh = failureError(structuredClone(describeFailure(new MeshError('MESH_SERVICE_NOT_FOUND', 'no such', {hints: ['h']}))))
    expect(mesh).toBeInstanceOf(MeshError)
    expect(mesh).toMatchObject({code: 'MESH_SERVICE_NOT_FOUND', hints: ['h']})
  })
})
