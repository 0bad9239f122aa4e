// FaultSet's per-request decisions on a VirtualClock: seeded dice, `first N`,
// selectors, the cheap index check, and expiry.
import {describe, expect, test} from 'vitest'
import {activeCertFault, type FaultInfo, type FaultSpec} from '../../src/sim/faults/fault.js'
import {type FaultRequest, FaultSet} from '../../src/sim/faults/fault-set.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const req = (over: Partial<{source: string; path: string; headers: Record<string, string>}> = {}): FaultRequest => {
  const headers = over.headers ?? {}
  return {source: over.source ?? 'frontend', path: over.path ?? '/', header: (name) => headers[name]}
}

/** Which of `n` requests to `service` the set hits (indices). */
function hitIndices(set: FaultSet, n: number, service = 'payments'): number[] {
  const out: number[] = []
  for (let i = 0; i < n; i++) if (set.match('callee', service, 'v1', req()).length > 0) out.push(i)
  return out
}

const abort = (over: Partial<FaultSpec> = {}): FaultSpec => ({service: 'payments', kind: 'abort', status: 503, ...over})

describe('FaultSet', () => {
  test('30% over 2000 requests hits 30% ± 3%, and counts seen and hits', () => {
    const set = new FaultSet(new VirtualClock())
    const f = set.add(abort({percent: 30, seed: 7}))
    const hits = hitIndices(set, 2000)
    expect(hits.length / 2000).toBeGreaterThanOrEqual(0.27)
    expect(hits.length / 2000).toBeLessThanOrEqual(0.33)
    expect(set.get(f.id)).toMatchObject({seen: 2000, hits: hits.length})
  })

  test('the same seed hits the same requests; another seed, others', () => {
    const run = (seed: number) => {
      const set = new FaultSet(new VirtualClock())
      set.add(abort({percent: 30, seed}))
      return hitIndices(set, 500)
    }
    expect(run(7)).toEqual(run(7))
    expect(run(8)).not.toEqual(run(7))
  })

  test('first N hits exactly the first N matching requests, then passes', () => {
    const set = new FaultSet(new VirtualClock())
    set.add(abort({first: 3}))
    expect(hitIndices(set, 10)).toEqual([0, 1, 2])
  })

  test('selectors: version, from, path prefix, header (case-insensitive name); non-matching requests are not seen', () => {
    const set = new FaultSet(new VirtualClock())
    const f = set.add(abort({version: 'v2', from: 'cart', pathPrefix: '/pay', header: {name: 'X-User', value: 'alice'}}))
    const hit = (version: string, r: FaultRequest) => set.match('callee', 'payments', version, r).map((x) => x.id)
    const good = {source: 'cart', path: '/pay/now', headers: {'x-user': 'alice'}}
    expect(hit('v2', req(good))).toEqual([f.id])
    expect(hit('v1', req(good))).toEqual([])
    expect(hit('v2', req({...good, source: 'frontend'}))).toEqual([])
    expect(hit('v2', req({...good, path: '/other'}))).toEqual([])
    expect(hit('v2', req({...good, headers: {'x-user': 'bob'}}))).toEqual([])
    expect(set.get(f.id)).toMatchObject({seen: 1, hits: 1})
    // Another service, or the other side, never matches.
    expect(set.match('callee', 'cart', 'v2', req(good))).toEqual([])
    expect(set.match('caller', 'payments', undefined, req(good))).toEqual([])
  })

  test('any() is the cheap per-request check: per side and service, per-request kinds only', () => {
    const set = new FaultSet(new VirtualClock())
    expect(set.any('callee', 'payments')).toBe(false)
    const f = set.add(abort({at: 'caller'}))
    expect(set.any('caller', 'payments')).toBe(true)
    expect(set.any('callee', 'payments')).toBe(false)
    expect(set.any('caller', 'cart')).toBe(false)
    set.add({service: 'cart', kind: 'pause', pauseMs: 1000})
    expect(set.any('callee', 'cart')).toBe(false)
    set.remove(f.id)
    expect(set.any('caller', 'payments')).toBe(false)
  })

  test('a fault with a duration expires on the clock and says so', async () => {
    const clock = new VirtualClock()
    const changes: Array<[string, string]> = []
    const set = new FaultSet(clock, (kind, f: FaultInfo) => changes.push([kind, f.id]))
    const f = set.add(abort({durationMs: 2000}))
    expect(f.expiresAt).toBe(new Date(clock.wallNow() + 2000).toISOString())
    await clock.advance(1999)
    expect(set.list().map((x) => x.id)).toEqual([f.id])
    await clock.advance(1)
    expect(set.list()).toEqual([])
    expect(set.any('callee', 'payments')).toBe(false)
    expect(changes).toEqual([
      ['added', f.id],
      ['expired', f.id],
    ])
  })

  test('clear by id, by service, or all; remove cancels the expiry timer', () => {
    const clock = new VirtualClock()
    const set = new FaultSet(clock)
    const a = set.add(abort({durationMs: 5000}))
    const b = set.add(abort({service: 'cart'}))
    const c = set.add(abort({service: 'cart', kind: 'delay', delayMs: 10}))
    expect(set.clear({id: a.id}).map((f) => f.id)).toEqual([a.id])
    expect(clock.pending()).toBe(0)
    expect(set.clear({service: 'cart'}).map((f) => f.id)).toEqual([b.id, c.id])
    set.add(abort())
    set.add(abort({service: 'x'}))
    expect(set.clear()).toHaveLength(2)
    expect(set.list()).toEqual([])
  })

  test('percent 0 sees every request and hits none; two faults on a service decide independently', () => {
    const set = new FaultSet(new VirtualClock())
    const none = set.add(abort({percent: 0, seed: 1}))
    const delay = set.add({service: 'payments', kind: 'delay', delayMs: 5, percent: 50, seed: 2})
    const hits = Array.from({length: 200}, () => set.match('callee', 'payments', 'v1', req()).map((f) => f.id))
    expect(hits.flat().filter((id) => id === none.id)).toEqual([])
    const delayed = hits.filter((h) => h.includes(delay.id)).length
    expect(delayed).toBeGreaterThan(70)
    expect(delayed).toBeLessThan(130)
    expect(set.get(none.id)).toMatchObject({seen: 200, hits: 0})
  })

  test('a cert fault chooses no requests; the service presents its latest one until each is gone, then its own', async () => {
    const clock = new VirtualClock()
    const set = new FaultSet(clock)
    const expired = set.add({service: 'cart', kind: 'cert', cert: 'expired'})
    const wrong = set.add({service: 'cart', kind: 'cert', cert: 'wrong-identity', durationMs: 1000})
    set.add({service: 'api', kind: 'cert', cert: 'untrusted'})
    expect(set.any('callee', 'cart')).toBe(false)
    expect(activeCertFault(set.list(), 'cart')).toBe('wrong-identity')
    await clock.advance(1000)
    expect(activeCertFault(set.list(), 'cart')).toBe('expired')
    set.remove(expired.id)
    expect(set.get(wrong.id)).toBeUndefined()
    expect(activeCertFault(set.list(), 'cart')).toBeUndefined()
    expect(activeCertFault(set.list(), 'api')).toBe('untrusted')
  })
})
