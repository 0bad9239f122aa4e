// A sweep over a tiny mesh with the engine: each cell is the run of the file with its keys set.
import {describe, expect, it} from 'vitest'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {stableJson} from '../../src/sim/virtual/stable-json.js'
import {parseVary} from '../../src/sim/virtual/sweep.js'
import {runSweep} from '../../src/sim/virtual/sweep-run.js'
import {TINY_FILE, TINY_SOURCE, tinyConfig} from './tiny-mesh.js'

const sweep = (vary: string[], metrics = ['successRate', 'p99', 'retries', 'payments.actualRequests']) =>
  runSweep({file: TINY_FILE, source: TINY_SOURCE, axes: parseVary(vary), load: {rps: 50, durationMs: 2000}, options: {seed: 11}, metrics})

describe('runSweep', () => {
  it('runs every cell, each the run of the file with its keys set', async () => {
    const s = await sweep(['services.frontend.policy.retries.attempts=0,2', 'load.rps=50,100'])
    expect(s.metrics).toEqual(['successRate', 'p99', 'retries', 'payments.actualRequests'])
    expect(s.cells.map((c) => c.values)).toEqual([
      {'services.frontend.policy.retries.attempts': '0', 'load.rps': '50'},
      {'services.frontend.policy.retries.attempts': '0', 'load.rps': '100'},
      {'services.frontend.policy.retries.attempts': '2', 'load.rps': '50'},
      {'services.frontend.policy.retries.attempts': '2', 'load.rps': '100'},
    ])
    expect(s.cells.map((c) => c.result.ingressRequests)).toEqual([100, 200, 100, 200])
    const [noRetry, , retried] = s.cells
    expect(noRetry.metrics.retries).toBe(0)
    expect(retried.metrics.retries).toBeGreaterThan(0)
    // Retries turn the 20% of failed calls to payments into fewer failures, at the price of more attempts.
    expect(retried.metrics.successRate!).toBeGreaterThan(noRetry.metrics.successRate!)
    expect(retried.metrics['payments.actualRequests']!).toBeGreaterThan(noRetry.metrics['payments.actualRequests']!)

    // The same as a plain run of the file with the value written in it.
    const written = tinyConfig((source) => source.replace('attempts: 0', 'attempts: 2'))
    const direct = await runSimulation(written, {shape: constantShape(50, 2000), seed: 11})
    const {series: _series, ...rest} = direct
    expect(stableJson(retried.result)).toBe(stableJson(rest))
  })

  it('gives the same bytes twice', async () => {
    const a = await sweep(['services.payments.versions.v1.simulate.errorRate=0,0.5'])
    const b = await sweep(['services.payments.versions.v1.simulate.errorRate=0,0.5'])
    expect(stableJson(a)).toBe(stableJson(b))
    expect(a.cells[0].metrics.successRate).toBe(1)
    expect(a.cells[1].metrics.successRate!).toBeLessThan(0.7)
  })

  it('refuses a bad key, value or metric before running any cell', async () => {
    await expect(sweep(['services.frontend.policy.retries.attemps=1'])).rejects.toThrow(/did you mean "attempts"\?/)
    await expect(sweep(['services.payments.versions.v1.simulate.errorRate=0,2'])).rejects.toMatchObject({code: 'MESH_CONFIG_INVALID', message: expect.stringMatching(/mesh\.yaml:20:22 services\.payments\.versions\.v1\.simulate\.errorRate: /)})
    await expect(sweep(['load.rps=10'], ['p98'])).rejects.toThrow(/no metric "p98"/)
  })
})
