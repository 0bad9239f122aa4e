// Fidelity through the whole engine (issue #24): one service behind the ingress, its
// instance's concurrency c, exponential service times, Poisson arrivals — every request
// through the ingress route, the data plane's Destination stack and the virtual leaf into
// the instance model — reproduces M/M/c: the mean wait (queueMsMean) and the p99 of the time
// in the system (the service's p99: no network in virtual time) within 5% of the theory,
// Little's law within 2%. ρ = 0.95 is checked on the Station alone (fidelity-station.test.ts):
// its mean wait needs ~8M requests for a 1.5% standard error, a minute and a half of CPU here.
import {describe, expect, it} from 'vitest'
import {constantShape} from '../../src/sim/load/arrival-schedule.js'
import {offeredLoads, unstableServices} from '../../src/sim/virtual/capacity-check.js'
import {runSimulation} from '../../src/sim/virtual/simulation.js'
import {parsed, yaml} from '../config/helpers.js'
import {type MMcCase, relativeError, theoryOf} from './mmc-run.js'

const MEAN_SERVICE_MS = 10

function oneService(servers: number) {
  return parsed(
    yaml(
      'name: mmc',
      'ingress: {port: 0, routes: [{prefix: /, service: s}]}',
      'services:',
      `  s: {simulate: {concurrency: ${servers}, latency: {distribution: exponential, mean: ${MEAN_SERVICE_MS}ms}, responseSize: 0}}`,
    ),
  )
}

const rpsOf = (c: Pick<MMcCase, 'servers' | 'utilisation'>) => (c.utilisation * c.servers * 1000) / MEAN_SERVICE_MS

const CASES: Array<Omit<MMcCase, 'warmUp'>> = [
  {servers: 1, utilisation: 0.5, jobs: 200_000, seed: 11},
  {servers: 4, utilisation: 0.5, jobs: 200_000, seed: 12},
  {servers: 1, utilisation: 0.8, jobs: 600_000, seed: 13},
  {servers: 4, utilisation: 0.8, jobs: 400_000, seed: 14},
]

describe('mesh sim reproduces M/M/c through the ingress, the sidecar stack and the instance model', () => {
  it.each(CASES)('c = $servers, ρ = $utilisation: mean wait and p99 within 5%, L = λW within 2%', async (c) => {
    const rps = rpsOf(c)
    const r = await runSimulation(oneService(c.servers), {shape: constantShape(rps, (c.jobs / rps) * 1000, 'poisson'), seed: c.seed})
    const theory = theoryOf({...c, warmUp: 0}, MEAN_SERVICE_MS)
    const s = r.services[0]
    const report = `wait ${s.queueMsMean} vs ${theory.meanWaitMs.toFixed(3)} ms, p99 ${s.p99} vs ${theory.sojournQuantileMs(0.99).toFixed(3)} ms`
    expect(s.successRate).toBe(1)
    expect(r.unstable).toEqual([])
    expect(relativeError(s.queueMsMean, theory.meanWaitMs), report).toBeLessThan(0.05)
    expect(relativeError(s.p99, theory.sojournQuantileMs(0.99)), report).toBeLessThan(0.05)
    expect(relativeError(s.meanInFlight, s.littleLambdaW)).toBeLessThan(0.02)
    expect(relativeError(s.meanInFlight, theory.meanInSystem)).toBeLessThan(0.05)
  }, 300_000)

  it('calls a service offered more than its slots unstable, as the capacity check says before the run', async () => {
    const config = oneService(2)
    const rps = rpsOf({servers: 2, utilisation: 1.25})
    expect(unstableServices(offeredLoads(config, rps))).toEqual([{service: 's', utilisation: 1.25}])
    const r = await runSimulation(config, {shape: constantShape(rps, 20_000, 'poisson'), seed: 3})
    expect(r.unstable.map((u) => u.service)).toEqual(['s'])
    expect(r.unstable[0].utilisation).toBeGreaterThan(1.1)
  })
})
