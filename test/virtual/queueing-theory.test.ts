import {describe, expect, it} from 'vitest'
import {erlangC, littleL, littleW, mmc} from '../../src/sim/virtual/queueing-theory.js'

describe('erlangC', () => {
  // Exact values from the closed form (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)), in rationals.
  it.each([
    [1, 0.5, 1 / 2],
    [2, 1, 1 / 3],
    [4, 2, 4 / 23],
    [4, 3.2, 8192 / 13735],
    [4, 3.8, 130321 / 146195],
    [10, 8, 4194304 / 10250507],
    [20, 19, 0.7554012320910864],
  ])('C(c=%i, a=%f) = %f', (c, a, expected) => {
    expect(erlangC(c, a)).toBeCloseTo(expected, 12)
  })

  it('is ρ for one server, 0 with no load, 1 once the load reaches the servers', () => {
    for (const rho of [0.1, 0.5, 0.95]) expect(erlangC(1, rho)).toBeCloseTo(rho, 12)
    expect(erlangC(3, 0)).toBe(0)
    expect(erlangC(3, 3)).toBe(1)
    expect(erlangC(3, 7)).toBe(1)
  })

  it('stays finite for a thousand servers, where factorials would overflow', () => {
    const c = erlangC(1000, 950)
    expect(c).toBeGreaterThan(0)
    expect(c).toBeLessThan(1)
  })

  it('refuses nonsense', () => {
    expect(() => erlangC(0, 1)).toThrow(RangeError)
    expect(() => erlangC(2.5, 1)).toThrow(RangeError)
    expect(() => erlangC(2, -1)).toThrow(RangeError)
  })
})

describe('mmc', () => {
  it('gives M/M/1\'s textbook figures: Wq = ρ/(μ−λ), W = 1/(μ−λ), L = ρ/(1−ρ), P(Wq > t) = ρ·e^(−(μ−λ)t)', () => {
    // μ = 1/10ms, λ = 0.08/ms: ρ = 0.8.
    const q = mmc({arrivalRatePerMs: 0.08, meanServiceMs: 10, servers: 1})
    expect(q.utilisation).toBeCloseTo(0.8, 12)
    expect(q.stable).toBe(true)
    expect(q.waitProbability).toBeCloseTo(0.8, 12)
    expect(q.meanWaitMs).toBeCloseTo(0.8 / (0.1 - 0.08), 9)
    expect(q.meanSojournMs).toBeCloseTo(1 / (0.1 - 0.08), 9)
    expect(q.meanInSystem).toBeCloseTo(0.8 / 0.2, 9)
    expect(q.meanQueued).toBeCloseTo(0.8 ** 2 / 0.2, 9)
    expect(q.waitExceeds(30)).toBeCloseTo(0.8 * Math.exp(-0.02 * 30), 12)
    // p99: ρ·e^(−(μ−λ)t) = 0.01 → t = ln(80)/0.02.
    expect(q.waitQuantileMs(0.99)).toBeCloseTo(Math.log(80) / 0.02, 9)
  })

  it('gives M/M/4 at a = 2 (C = 4/23): Wq = C/(cμ−λ), and its p99 from the exponential tail', () => {
    const q = mmc({arrivalRatePerMs: 0.2, meanServiceMs: 10, servers: 4})
    expect(q.utilisation).toBeCloseTo(0.5, 12)
    expect(q.meanWaitMs).toBeCloseTo(4 / 23 / (0.4 - 0.2), 9)
    expect(q.waitQuantileMs(0.99)).toBeCloseTo(Math.log((4 / 23) / 0.01) / 0.2, 9)
    // Most arrivals do not wait: every quantile up to 1 − C is 0.
    expect(q.waitQuantileMs(0.8)).toBe(0)
    expect(q.waitExceeds(q.waitQuantileMs(0.99))).toBeCloseTo(0.01, 12)
  })

  it('gives the time in the system: M/M/1\'s is exponential at rate μ−λ; M/M/c\'s mean is E[Wq] + 1/μ and its tail the Gross–Harris form', () => {
    const one = mmc({arrivalRatePerMs: 0.08, meanServiceMs: 10, servers: 1})
    expect(one.sojournExceeds(50)).toBeCloseTo(Math.exp(-0.02 * 50), 12)
    expect(one.sojournQuantileMs(0.99)).toBeCloseTo(Math.log(100) / 0.02, 6)
    const four = mmc({arrivalRatePerMs: 0.32, meanServiceMs: 10, servers: 4})
    // ∫ P(W > t) dt is E[W]: integrate the tail numerically (trapezoid, 0.01 ms steps, to 2000 ms).
    let area = 0
    for (let t = 0; t < 2000; t += 0.01) area += ((four.sojournExceeds(t) + four.sojournExceeds(t + 0.01)) / 2) * 0.01
    expect(area).toBeCloseTo(four.meanSojournMs, 3)
    expect(four.sojournExceeds(four.sojournQuantileMs(0.99))).toBeCloseTo(0.01, 10)
    // c − 1 − a = 0 (c = 4, a = 3) takes the limit form e^(−μt)(1 + Cμt), continuous with its neighbours.
    const edge = mmc({arrivalRatePerMs: 0.3, meanServiceMs: 10, servers: 4})
    const near = mmc({arrivalRatePerMs: 0.3 + 1e-9, meanServiceMs: 10, servers: 4})
    expect(edge.sojournExceeds(40)).toBeCloseTo(near.sojournExceeds(40), 6)
    expect(edge.sojournExceeds(40)).toBeCloseTo(Math.exp(-4) * (1 + edge.waitProbability * 4), 12)
  })

  it('says an overloaded queue is unstable, with no finite wait', () => {
    const q = mmc({arrivalRatePerMs: 0.5, meanServiceMs: 10, servers: 4})
    expect(q.utilisation).toBeCloseTo(1.25, 12)
    expect(q.stable).toBe(false)
    expect(q.meanWaitMs).toBe(Infinity)
    expect(q.waitQuantileMs(0.99)).toBe(Infinity)
    expect(q.waitExceeds(1e9)).toBe(1)
  })

  it('applies Little\'s law both ways', () => {
    expect(littleL(0.5, 20)).toBe(10)
    expect(littleW(0.5, 10)).toBe(20)
    expect(littleL(0, Infinity)).toBe(0)
  })
})
