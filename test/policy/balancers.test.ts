import {describe, expect, test} from 'vitest'
import type {Balancer} from '../../src/sim/proxy/balance/balancer.js'
import {createBalancer} from '../../src/sim/proxy/balance/create-balancer.js'
import {DEFAULT_DECAY_MS, EwmaBalancer} from '../../src/sim/proxy/balance/ewma.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import type {LoadBalancerKind} from '../../src/sim/config/types.js'

// The data plane hands its own endpoint objects plus a key function; tests do the same.
interface Ep {
  instance: string
}
const eps = (n: number): Ep[] => Array.from({length: n}, (_, i) => ({instance: `svc-v1-${i}`}))
const key = (e: Ep) => e.instance

function make(kind: LoadBalancerKind, seed = 1, clock = new VirtualClock()): Balancer<Ep> {
  return createBalancer<Ep>({kind}, {clock, random: new SeededRandom(seed), key})
}

function counts(b: Balancer<Ep>, candidates: Ep[], picks: number): Map<string, number> {
  const out = new Map<string, number>()
  for (let i = 0; i < picks; i++) {
    const e = b.pick(candidates)!
    out.set(e.instance, (out.get(e.instance) ?? 0) + 1)
  }
  return out
}

function sequence(b: Balancer<Ep>, candidates: Ep[], picks: number): string[] {
  return Array.from({length: picks}, () => b.pick(candidates)!.instance)
}

describe('round-robin', () => {
  test('3000 picks over 3 endpoints are exactly even (well within ±5%)', () => {
    const c = counts(make('round-robin'), eps(3), 3000)
    expect([...c.values()]).toEqual([1000, 1000, 1000])
  })

  test('takes turns in order', () => {
    expect(sequence(make('round-robin'), eps(3), 5)).toEqual(['svc-v1-0', 'svc-v1-1', 'svc-v1-2', 'svc-v1-0', 'svc-v1-1'])
  })

  test('empty candidates give undefined', () => {
    expect(make('round-robin').pick([])).toBeUndefined()
  })

  test('picks from another list in between (a one-instance version, a mirror) do not send it back to the first of three', () => {
    const b = make('round-robin')
    const three = eps(3)
    const one = [{instance: 'svc-v2-0'}] as Ep[]
    const served = new Map<string, number>()
    for (let i = 0; i < 300; i++) {
      const e = b.pick(three)!
      served.set(e.instance, (served.get(e.instance) ?? 0) + 1)
      b.pick(one)
    }
    expect([...served.values()]).toEqual([100, 100, 100])
  })
})

describe.each(['random', 'least-request', 'ewma'] as const)('%s', (kind) => {
  test('spreads 3000 picks roughly evenly with a seed (idle endpoints)', () => {
    const c = counts(make(kind, 42), eps(3), 3000)
    expect(c.size).toBe(3)
    for (const n of c.values()) expect(Math.abs(n - 1000)).toBeLessThan(100)
  })

  test('is deterministic per seed, and another seed differs', () => {
    const a = sequence(make(kind, 7), eps(5), 200)
    const b = sequence(make(kind, 7), eps(5), 200)
    const c = sequence(make(kind, 8), eps(5), 200)
    expect(a).toEqual(b)
    expect(c).not.toEqual(a)
  })
})

describe('least-request', () => {
  test('prefers the endpoint with fewer requests in flight', () => {
    const b = make('least-request', 3)
    const [busy, idle] = eps(2)
    for (let i = 0; i < 5; i++) b.onStart!(busy)
    // With two endpoints P2C always compares both, so the idle one wins every time.
    expect(new Set(sequence(b, [busy, idle], 100))).toEqual(new Set([idle.instance]))
    for (let i = 0; i < 5; i++) b.onEnd!(busy, 10, true)
    b.onStart!(idle)
    expect(b.pick([busy, idle])).toBe(busy)
  })

  test('an end without a start (a request forgotten with its endpoint) never makes in-flight negative', () => {
    const b = make('least-request', 3)
    const [a, c] = eps(2)
    b.onStart!(a)
    b.onEnd!(a, 10, true)
    b.onEnd!(a, 10, true)
    b.onStart!(a)
    // a has one in flight, c none: with a at -1 + 1 = 0 they would tie and a would win some picks.
    expect(new Set(sequence(b, [a, c], 50))).toEqual(new Set([c.instance]))
  })

  test('with one loaded endpoint of 3, it gets clearly fewer picks', () => {
    const b = make('least-request', 5)
    const all = eps(3)
    b.onStart!(all[0])
    const c = counts(b, all, 3000)
    // P2C: the loaded endpoint only wins when it is not drawn against another: never.
    expect(c.get('svc-v1-0') ?? 0).toBe(0)
    expect(c.get('svc-v1-1')! + c.get('svc-v1-2')!).toBe(3000)
  })
})

describe('ewma', () => {
  test('steers away from a slow endpoint and comes back after it recovers', async () => {
    const clock = new VirtualClock()
    const b = make('ewma', 11, clock)
    const all = eps(3)
    let slow = true
    const latency = (e: Ep) => (e.instance === 'svc-v1-1' && slow ? 500 : 10)
    // One request every 10 ms of virtual time; latency is reported through onEnd.
    async function run(ms: number): Promise<Map<string, number>> {
      const seen = new Map<string, number>()
      for (let t = 0; t < ms; t += 10) {
        const e = b.pick(all)!
        b.onStart!(e)
        b.onEnd!(e, latency(e), true)
        seen.set(e.instance, (seen.get(e.instance) ?? 0) + 1)
        await clock.advance(10)
      }
      return seen
    }
    const slowPhase = await run(60_000) // 6000 requests
    expect(slowPhase.get('svc-v1-1') ?? 0).toBeLessThan(6000 * 0.05)
    slow = false
    await run(60_000) // recovery: the decayed estimate lets it be probed, fast answers keep it in
    const recovered = await run(30_000)
    expect(recovered.get('svc-v1-1') ?? 0).toBeGreaterThan(3000 * 0.25)
  })

  test('in-flight requests raise the cost (latency × (in-flight + 1))', () => {
    const b = make('ewma', 2)
    const [a, c] = eps(2)
    b.onStart!(a)
    b.onStart!(a)
    // Two endpoints: P2C compares both every time, so the cheaper one wins every pick.
    expect(new Set(sequence(b, [a, c], 50))).toEqual(new Set([c.instance]))
    for (let i = 0; i < 3; i++) b.onStart!(c)
    expect(new Set(sequence(b, [a, c], 50))).toEqual(new Set([a.instance]))
  })

  test('a faster answer pulls the peak down by weight 1 - e^(-elapsed/τ) (tower\'s RttEstimate)', async () => {
    const clock = new VirtualClock()
    const b = new EwmaBalancer<Ep>(clock, new SeededRandom(1), key)
    const [a] = eps(1)
    b.onStart(a)
    b.onEnd(a, 100) // a peak replaces the estimate at once
    expect(b.costOf(a.instance)).toBe(100)
    await clock.advance(DEFAULT_DECAY_MS)
    b.onStart(a)
    b.onEnd(a, 10)
    const w = Math.exp(-1)
    expect(b.costOf(a.instance)).toBeCloseTo(100 * w + 10 * (1 - w), 9)
    b.onStart(a)
    expect(b.costOf(a.instance)).toBeCloseTo(2 * (100 * w + 10 * (1 - w)), 9)
  })

  test('an end without a start (a request forgotten with its endpoint) never makes in-flight negative', () => {
    const b = make('ewma', 3)
    const [a, c] = eps(2)
    b.onEnd!(a, 30, true)
    b.onStart!(a)
    // a has one in flight, c none: with a at -1 + 1 = 0 they would tie and a would win some picks.
    expect(new Set(sequence(b, [a, c], 50))).toEqual(new Set([c.instance]))
  })
})

describe('exclude (a retry avoids endpoints already tried)', () => {
  test.each(['round-robin', 'random', 'least-request', 'ewma', 'ring-hash'] as const)('%s honours exclude while alternatives exist', (kind) => {
    const b = make(kind, 9)
    const all = eps(4)
    const exclude = new Set(['svc-v1-0', 'svc-v1-2'])
    for (let i = 0; i < 200; i++) {
      const e = b.pick(all, {exclude, hashKey: `user-${i}`})!
      expect(exclude.has(e.instance)).toBe(false)
    }
    // Only one left: always that one.
    const onlyOne = new Set(['svc-v1-0', 'svc-v1-1', 'svc-v1-2'])
    for (let i = 0; i < 20; i++) expect(b.pick(all, {exclude: onlyOne, hashKey: `k${i}`})!.instance).toBe('svc-v1-3')
  })

  test.each(['round-robin', 'random', 'least-request', 'ewma', 'ring-hash'] as const)('%s still picks when every candidate was tried', (kind) => {
    const b = make(kind, 9)
    const all = eps(3)
    const exclude = new Set(all.map(key))
    expect(all).toContain(b.pick(all, {exclude, hashKey: 'k'}))
  })
})
