import {describe, expect, test} from 'vitest'
import {RingHashBalancer, hash32} from '../../src/sim/proxy/balance/ring-hash.js'
import {SeededRandom} from '../../src/sim/time/random.js'

interface Ep {
  instance: string
}
const key = (e: Ep) => e.instance
const eps = (n: number): Ep[] => Array.from({length: n}, (_, i) => ({instance: `cart-v1-${i}`}))
const keys = Array.from({length: 10_000}, (_, i) => `session-${i}`)

function assign(b: RingHashBalancer<Ep>, candidates: Ep[]): string[] {
  return keys.map((k) => b.pick(candidates, {hashKey: k})!.instance)
}

describe('ring-hash', () => {
  test('hash32 is a stable 32-bit hash', () => {
    expect(hash32('a')).toBe(hash32('a'))
    expect(hash32('a')).not.toBe(hash32('b'))
    expect(hash32('x') >>> 0).toBe(hash32('x'))
  })

  test('the same key goes to the same endpoint on every call, whatever the list order', () => {
    const b = new RingHashBalancer<Ep>(new SeededRandom(1), key)
    const all = eps(5)
    const first = assign(b, all)
    expect(assign(b, all)).toEqual(first)
    expect(assign(b, [...all].reverse())).toEqual(first)
  })

  test('spreads keys over every endpoint roughly evenly', () => {
    const b = new RingHashBalancer<Ep>(new SeededRandom(1), key)
    const c = new Map<string, number>()
    for (const id of assign(b, eps(5))) c.set(id, (c.get(id) ?? 0) + 1)
    expect(c.size).toBe(5)
    // 100 virtual nodes each: within ±40% of the 2000 fair share.
    for (const n of c.values()) expect(Math.abs(n - 2000)).toBeLessThan(800)
  })

  test('removing 1 of 5 endpoints moves ≈1/N of keys, and only those that were on it', () => {
    const b = new RingHashBalancer<Ep>(new SeededRandom(1), key)
    const all = eps(5)
    const before = assign(b, all)
    const after = assign(b, all.filter((e) => e.instance !== 'cart-v1-2'))
    let moved = 0
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === after[i]) continue
      moved++
      expect(before[i]).toBe('cart-v1-2')
    }
    expect(moved / keys.length).toBeGreaterThan(0.1)
    expect(moved / keys.length).toBeLessThan(0.3)
    // Adding it back restores the original assignment exactly.
    expect(assign(b, all)).toEqual(before)
  })

  test('the ring is rebuilt only when membership changes', () => {
    const b = new RingHashBalancer<Ep>(new SeededRandom(1), key)
    const all = eps(4)
    for (let i = 0; i < 100; i++) b.pick(all, {hashKey: `k${i}`})
    expect(b.builds).toBe(1)
    b.pick([...all].reverse(), {hashKey: 'k'}) // same set, new order: remap, no rebuild
    b.pick(all.map((e) => ({...e})), {hashKey: 'k'}) // same keys, new objects: no rebuild
    expect(b.builds).toBe(1)
    b.pick(all.slice(1), {hashKey: 'k'})
    expect(b.builds).toBe(2)
  })

  test('without a hash key it picks at random, deterministically per seed', () => {
    const all = eps(3)
    const run = (seed: number) => {
      const b = new RingHashBalancer<Ep>(new SeededRandom(seed), key)
      return Array.from({length: 300}, () => b.pick(all)!.instance)
    }
    const a = run(4)
    expect(run(4)).toEqual(a)
    expect(new Set(a).size).toBe(3)
  })
})
