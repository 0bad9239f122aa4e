// Fidelity of mesh sim's service model (issue #24): one Station (a service's concurrency
// queue) on the SimClock, fed Poisson arrivals and exponential service times drawn by the
// latency model itself, must reproduce M/M/c — Erlang C's mean wait and waiting-time p99
// within 5% — and Little's law within 2%. Seeds are fixed; the run lengths give the mean
// wait a standard error of about 1.5% at ρ = 0.95 (the waiting times of a busy queue are
// long-correlated: its relative variance per job is ~1700 there, ~30 at ρ = 0.5).
import {describe, expect, it} from 'vitest'
import {latencyModel} from '../../src/sim/model/latency-model.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import {SimClock} from '../../src/sim/virtual/event-queue.js'
import {Station, type StationJob} from '../../src/sim/virtual/station.js'
import {type MMcCase, relativeError, theoryOf, WaitHistogram} from './mmc-run.js'

const MEAN_SERVICE_MS = 10

const CASES: MMcCase[] = [
  {servers: 1, utilisation: 0.5, jobs: 400_000, warmUp: 10_000, seed: 1},
  {servers: 1, utilisation: 0.8, jobs: 1_000_000, warmUp: 20_000, seed: 2},
  {servers: 1, utilisation: 0.95, jobs: 8_000_000, warmUp: 100_000, seed: 3},
  {servers: 4, utilisation: 0.5, jobs: 1_000_000, warmUp: 10_000, seed: 4},
  {servers: 4, utilisation: 0.8, jobs: 2_000_000, warmUp: 20_000, seed: 5},
  {servers: 4, utilisation: 0.95, jobs: 8_000_000, warmUp: 100_000, seed: 6},
]

async function runStation(c: MMcCase) {
  const theory = theoryOf(c, MEAN_SERVICE_MS)
  const clock = new SimClock()
  const station = new Station(clock, c.servers)
  const gaps = latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: 1 / ((c.utilisation * c.servers) / MEAN_SERVICE_MS)})
  const service = latencyModel({p50Ms: 0, p99Ms: 0, distribution: 'exponential', meanMs: MEAN_SERVICE_MS})
  const arrivalDice = new SeededRandom(c.seed)
  const serviceDice = new SeededRandom(c.seed * 7919 + 1)
  const waits = new WaitHistogram(theory.waitQuantileMs(0.99))
  const total = c.warmUp + c.jobs
  let sent = 0
  let measuredFrom = 0
  let measuredBase = {...station.totals}
  const arrive = () => {
    const index = sent++
    if (index === c.warmUp) {
      station.account()
      measuredFrom = clock.now()
      measuredBase = {...station.totals}
    }
    const job: StationJob = {
      enteredAt: 0,
      startedAt: 0,
      queued: false,
      start() {
        if (index >= c.warmUp) waits.add(job.startedAt - job.enteredAt)
        clock.setTimer(service.sample(serviceDice), () => station.done(job))
      },
    }
    station.enter(job)
    if (sent < total) clock.setTimer(gaps.sample(arrivalDice), arrive)
  }
  clock.setTimer(0, arrive)
  await clock.run(() => false)
  station.account()
  const elapsed = clock.now() - measuredFrom
  const t = station.totals
  const lambda = (t.arrived - measuredBase.arrived) / elapsed
  const sojourn = (t.sojournMs - measuredBase.sojournMs) / (t.departed - measuredBase.departed)
  const inSystem = (t.inSystemMs - measuredBase.inSystemMs) / elapsed
  return {theory, waits, lambda, sojourn, inSystem}
}

describe('a Station under Poisson arrivals and exponential service times is M/M/c', () => {
  it.each(CASES)('c = $servers, ρ = $utilisation: mean wait and its p99 within 5% of Erlang C, L = λW within 2%', async (c) => {
    const {theory, waits, lambda, sojourn, inSystem} = await runStation(c)
    expect(waits.count).toBe(c.jobs)
    const report = `mean wait ${waits.mean.toFixed(3)} vs ${theory.meanWaitMs.toFixed(3)} ms, p99 ${waits.quantile(0.99).toFixed(3)} vs ${theory.waitQuantileMs(0.99).toFixed(3)} ms`
    if (process.env.FIDELITY_REPORT) console.log(`c=${c.servers} ρ=${c.utilisation}: ${report}; L ${inSystem.toFixed(4)} vs λW ${(lambda * sojourn).toFixed(4)} vs ${theory.meanInSystem.toFixed(4)}`)
    expect(relativeError(waits.mean, theory.meanWaitMs), report).toBeLessThan(0.05)
    expect(relativeError(waits.quantile(0.99), theory.waitQuantileMs(0.99)), report).toBeLessThan(0.05)
    // Little's law on what the station integrated, and its L against the theory's.
    expect(relativeError(inSystem, lambda * sojourn)).toBeLessThan(0.02)
    expect(relativeError(inSystem, theory.meanInSystem)).toBeLessThan(0.05)
  }, 300_000)
})
