// The activator's admission policy on a virtual clock: slots per instance
// (containerConcurrency), the FIFO queue and its bound, throttling when the version
// cannot grow, holding while it can, the activator timeout, a failed cold start, a held
// request that leaves, and Lambda's account pool with reserved concurrency.
import {describe, expect, it} from 'vitest'
import {ConcurrencyAccount, ConcurrencyGate, type GateLimits, type Refusal, type Waiter} from '../../src/sim/scaling/concurrency-gate.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const LIMITS: GateLimits = {containerConcurrency: 1, maxScale: 3, queue: 0, activatorTimeoutMs: 60_000}

/** A request as the activator layer plays it: admitted → claims a free instance; release() later gives it back. */
class Request implements Waiter {
  state: 'new' | 'admitted' | 'held' | 'throttled' | 'refused' = 'new'
  instance?: string
  throttled?: string
  refusal?: Refusal
  waitedMs?: number
  coldStart?: boolean

  /** `pinned`: a call to that instance's published address (the gate claims it on admission). */
  constructor(
    private readonly gate: ConcurrencyGate,
    private readonly pinned?: string,
  ) {}

  enter(): this {
    const entry = this.gate.enter(this, this.pinned)
    if (entry === 'admitted') this.go()
    else if (entry === 'held') this.state = 'held'
    else {
      this.state = 'throttled'
      this.throttled = entry.throttled
    }
    return this
  }

  admitted(waitedMs: number, coldStart: boolean): void {
    this.waitedMs = waitedMs
    this.coldStart = coldStart
    this.go()
  }

  refused(refusal: Refusal): void {
    this.state = 'refused'
    this.refusal = refusal
  }

  release(): void {
    this.gate.release(this.instance)
    this.instance = undefined
  }

  /** As the balancer would: the first instance with a free place. */
  private go(): void {
    this.state = 'admitted'
    if (this.pinned !== undefined) return void (this.instance = this.pinned)
    const free = instances(this.gate).find((i) => this.gate.isFree(i))
    expect(free, 'an admitted request always finds an instance with a free place').toBeDefined()
    this.instance = free
    this.gate.claim(free!)
  }
}

const names = new WeakMap<ConcurrencyGate, string[]>()
const instances = (gate: ConcurrencyGate) => names.get(gate) ?? []
function setInstances(gate: ConcurrencyGate, list: string[]): void {
  names.set(gate, list)
  gate.setInstances(list)
}

function setup(limits: Partial<GateLimits> = {}, ready = ['a', 'b', 'c'], accountLimit?: number) {
  const clock = new VirtualClock()
  const account = new ConcurrencyAccount(() => accountLimit)
  const gate = new ConcurrencyGate('api', 'v1', {...LIMITS, ...limits}, account, clock)
  setInstances(gate, ready)
  const send = (n: number) => Array.from({length: n}, () => new Request(gate).enter())
  return {clock, account, gate, send}
}

const count = (rs: Request[], state: Request['state']) => rs.filter((r) => r.state === state).length

describe('slots per instance (containerConcurrency)', () => {
  it('admits one request per instance at containerConcurrency 1, each on its own instance, and throttles the rest at maxScale with the queue full', () => {
    const {gate, send} = setup()
    const rs = send(10)
    expect(count(rs, 'admitted')).toBe(3)
    expect(new Set(rs.filter((r) => r.instance).map((r) => r.instance))).toEqual(new Set(['a', 'b', 'c']))
    expect(count(rs, 'throttled')).toBe(7)
    expect(rs[3].throttled).toBe('"api" v1 runs 3 of maxScale 3 instances, busy with 1 request each (containerConcurrency), and its queue of 0 is full (scaling.queue)')
    expect(gate.inFlight).toBe(3)
    expect(['a', 'b', 'c'].some((i) => gate.isFree(i))).toBe(false)
    for (const r of rs) if (r.state === 'admitted') r.release()
    expect(gate.inFlight).toBe(0)
    expect(['a', 'b', 'c'].every((i) => gate.isFree(i))).toBe(true)
    expect(count(send(3), 'admitted')).toBe(3)
  })

  it('takes containerConcurrency requests per instance (2 × 3 = 6)', () => {
    const {send} = setup({containerConcurrency: 2})
    const rs = send(8)
    expect(count(rs, 'admitted')).toBe(6)
    const per = new Map<string, number>()
    for (const r of rs) if (r.instance) per.set(r.instance, (per.get(r.instance) ?? 0) + 1)
    expect([...per.values()]).toEqual([2, 2, 2])
  })

  it('containerConcurrency 0 is no limit per instance: only an instance is needed', () => {
    const {gate, send} = setup({containerConcurrency: 0}, ['a'])
    expect(count(send(50), 'admitted')).toBe(50)
    expect(gate.inFlight).toBe(50)
  })

  it('gives back a slot taken by a request that never reached an instance (release before claim)', () => {
    const {gate} = setup({}, ['a'])
    expect(gate.enter({admitted: () => undefined, refused: () => undefined})).toBe('admitted')
    expect(gate.inFlight).toBe(1)
    gate.release(undefined)
    expect(gate.inFlight).toBe(0)
    expect(count([new Request(gate).enter()], 'admitted')).toBe(1)
  })
})

describe('the queue', () => {
  it('holds up to `queue` requests first in, first out; a freed slot goes to the oldest, and says how long it waited', async () => {
    const {clock, gate, send} = setup({queue: 2, maxScale: 1}, ['a'])
    const [first, ...rest] = send(4)
    expect(first.state).toBe('admitted')
    expect(rest.map((r) => r.state)).toEqual(['held', 'held', 'throttled'])
    expect(gate.held).toBe(2)
    await clock.advance(250)
    // A newcomer does not jump the queue, even as a slot frees.
    first.release()
    expect(rest[0]).toMatchObject({state: 'admitted', instance: 'a', waitedMs: 250, coldStart: false})
    expect(rest[1].state).toBe('held')
    expect(new Request(gate).enter().state).toBe('held')
    expect(gate.held).toBe(2)
  })

  it('answers a held request that waited activatorTimeout with why, and counts nothing for it after', async () => {
    const {clock, gate, send} = setup({queue: 1, maxScale: 1, activatorTimeoutMs: 1000}, ['a'])
    const [busy, held] = send(2)
    await clock.advance(999)
    expect(held.state).toBe('held')
    await clock.advance(1)
    expect(held.refusal).toEqual({kind: 'timeout', reason: 'none of the 1 instances of "api" v1 had a free slot within 1000 ms (scaling.activatorTimeout) (containerConcurrency 1)'})
    expect(gate.held).toBe(0)
    busy.release()
    expect(gate.inFlight).toBe(0)
    expect(clock.pending()).toBe(0)
  })

  it('a held request that leaves (its client went away) gives its place back and its timer is cancelled', () => {
    const {clock, gate, send} = setup({queue: 1, maxScale: 1}, ['a'])
    const [busy, held] = send(2)
    expect(new Request(gate).enter().state).toBe('throttled')
    gate.leave(held)
    expect(gate.held).toBe(0)
    expect(clock.pending()).toBe(0)
    const later = new Request(gate).enter()
    expect(later.state).toBe('held')
    busy.release()
    expect(later.state).toBe('admitted')
    expect(held.state).toBe('held') // never told anything: it left
  })
})

describe('a version that can still grow, and scale from zero', () => {
  it('holds the first request of a version at zero even with queue 0, then forwards it as a cold start when an instance is ready', async () => {
    const {clock, gate, send} = setup({queue: 0, maxScale: 2}, [])
    const rs = send(3)
    // Two instances of one request each could come: two are held for them, the third is throttled.
    expect(rs.map((r) => r.state)).toEqual(['held', 'held', 'throttled'])
    expect(rs[2].throttled).toMatch(/runs 0 of maxScale 2 instances/)
    await clock.advance(800)
    setInstances(gate, ['a'])
    expect(rs[0]).toMatchObject({state: 'admitted', instance: 'a', waitedMs: 800, coldStart: true})
    expect(rs[1].state).toBe('held')
    await clock.advance(100)
    setInstances(gate, ['a', 'b'])
    expect(rs[1]).toMatchObject({state: 'admitted', instance: 'b', waitedMs: 900, coldStart: true})
  })

  it('a request held behind busy instances (not at zero) is no cold start', () => {
    const {gate, send} = setup({queue: 0, maxScale: 3}, ['a'])
    const [busy, held] = send(2)
    expect(held.state).toBe('held') // below maxScale: it waits for a new instance
    setInstances(gate, ['a', 'b'])
    expect(held).toMatchObject({state: 'admitted', instance: 'b', coldStart: false})
    busy.release()
  })

  it('a failed cold start answers every held request at once with the reason', () => {
    const {gate, send} = setup({queue: 5}, [])
    const rs = send(3)
    gate.failHeld('catalog-v1-1 exited with code 1: Error: cannot find module')
    expect(rs.map((r) => r.refusal)).toEqual(Array(3).fill({kind: 'start-failed', reason: 'catalog-v1-1 exited with code 1: Error: cannot find module'}))
    expect(gate.held).toBe(0)
  })

  it('an instance that leaves with a request in flight gives no place, and the request still gives its slot back', () => {
    const {gate, send} = setup({queue: 1}, ['a', 'b'])
    const [onA, onB] = send(2)
    expect([onA.instance, onB.instance]).toEqual(['a', 'b'])
    setInstances(gate, ['b']) // a drains
    expect(gate.isFree('a')).toBe(false)
    const held = new Request(gate).enter()
    expect(held.state).toBe('held')
    onA.release() // a's place is gone with it: nothing frees
    expect(held.state).toBe('held')
    expect(gate.inFlight).toBe(1)
    onB.release()
    expect(held).toMatchObject({state: 'admitted', instance: 'b'})
  })
})

describe('a request for one instance (its published address called)', () => {
  it('waits for a place on that instance only: another instance free does not serve it, nor does it block the queue', () => {
    const {gate, send} = setup({queue: 5, maxScale: 2}, ['a', 'b'])
    const [onA] = send(1)
    expect(onA.instance).toBe('a')
    const forA = new Request(gate, 'a').enter()
    expect(forA.state).toBe('held')
    expect(gate.held).toBe(1)
    // b is free: a request for any instance goes there at once, past the one held for a.
    expect(new Request(gate).enter()).toMatchObject({state: 'admitted', instance: 'b'})
    onA.release()
    expect(forA).toMatchObject({state: 'admitted', instance: 'a', coldStart: false})
    expect(gate.isFree('a')).toBe(false)
    forA.release()
    expect(gate.isFree('a')).toBe(true)
  })

  it('a place that frees goes to the oldest waiter that can take it, held for that instance or for any', () => {
    const {gate, send} = setup({queue: 5, maxScale: 2}, ['a', 'b'])
    const [onA, onB] = send(2)
    const forA = new Request(gate, 'a').enter()
    const any = new Request(gate).enter()
    expect([forA.state, any.state]).toEqual(['held', 'held'])
    onB.release() // b's place: the one held for any instance takes it (the older waits for a)
    expect(any).toMatchObject({state: 'admitted', instance: 'b'})
    expect(forA.state).toBe('held')
    onA.release()
    expect(forA).toMatchObject({state: 'admitted', instance: 'a'})
  })

  it('an instance not ready yet (cold-starting) holds it until it is, then it goes as a cold start', async () => {
    const {clock, gate} = setup({queue: 5}, [])
    const direct = new Request(gate, 'a').enter()
    expect(direct.state).toBe('held')
    await clock.advance(700)
    setInstances(gate, ['b'])
    expect(direct.state).toBe('held')
    setInstances(gate, ['b', 'a'])
    expect(direct).toMatchObject({state: 'admitted', instance: 'a', waitedMs: 700, coldStart: true})
  })

  it('counts against the queue bound; times out with why; a held one that leaves or whose instance is gone holds nothing', async () => {
    const {clock, gate} = setup({queue: 2, maxScale: 1, activatorTimeoutMs: 1000}, ['a'])
    const busy = new Request(gate, 'a').enter()
    const [leaving, late] = [new Request(gate, 'a').enter(), new Request(gate, 'a').enter()]
    expect(new Request(gate).enter().state).toBe('throttled')
    gate.leave(leaving)
    expect(gate.held).toBe(1)
    await clock.advance(1000)
    expect(late.refusal).toEqual({kind: 'timeout', reason: 'instance a of "api" v1 had no free slot within 1000 ms (scaling.activatorTimeout) (containerConcurrency 1)'})
    const forGone = new Request(gate, 'z').enter()
    gate.instanceGone('z', 'z left')
    expect(forGone.refusal).toEqual({kind: 'closed', reason: 'z left'})
    expect(gate.held).toBe(0)
    busy.release()
    expect(gate.inFlight).toBe(0)
    expect(clock.pending()).toBe(0)
  })
})

describe("Lambda's account pool and reserved concurrency", () => {
  function two(accountLimit: number | undefined, a: Partial<GateLimits>, b: Partial<GateLimits>) {
    const clock = new VirtualClock()
    const account = new ConcurrencyAccount(() => accountLimit)
    const gates = [a, b].map((l, i) => new ConcurrencyGate(i === 0 ? 'orders' : 'payments', 'v1', {...LIMITS, containerConcurrency: 0, maxScale: 10, ...l}, account, clock))
    for (const g of gates) setInstances(g, ['x'])
    const send = (g: number, n: number) => Array.from({length: n}, () => new Request(gates[g]).enter())
    return {clock, account, gates, send}
  }

  it('caps the requests in flight across versions at accountConcurrency; past it, with the queue full, 429', () => {
    const {gates, send} = two(4, {}, {})
    const a = send(0, 3)
    const b = send(1, 3)
    expect(count(a, 'admitted') + count(b, 'admitted')).toBe(4)
    expect(b.map((r) => r.state)).toEqual(['admitted', 'throttled', 'throttled'])
    expect(b[1].throttled).toBe('"payments" v1: the account\'s concurrency limit of 4 is in use (functions.accountConcurrency) and its queue of 0 is full (scaling.queue)')
    a[0].release()
    expect(gates[0].inFlight + gates[1].inFlight).toBe(3)
    expect(count(send(1, 2), 'admitted')).toBe(1)
  })

  it('a freed account slot goes to the oldest held request of any version', () => {
    const {gates, send} = two(2, {queue: 5}, {queue: 5})
    const [a1, a2] = send(0, 2)
    const b = send(1, 1)[0]
    const a3 = send(0, 1)[0]
    expect([b.state, a3.state]).toEqual(['held', 'held'])
    a1.release()
    expect(b.state).toBe('admitted') // held before a3
    expect(a3.state).toBe('held')
    a2.release()
    expect(a3.state).toBe('admitted')
    expect(gates.map((g) => g.inFlight)).toEqual([1, 1])
  })

  it('reserved concurrency is guaranteed (the others share only the rest) and capped (never more, even with the account idle)', () => {
    const {account, gates, send} = two(10, {reservedConcurrency: 3}, {})
    const b = send(1, 9)
    expect(count(b, 'admitted')).toBe(7) // 10 − 3 reserved for orders
    expect(b[7].throttled).toMatch(/account's concurrency limit of 10 is in use \(functions.accountConcurrency, 3 of it reserved for other versions\)/)
    expect(account.unreservedInFlight).toBe(7)
    const a = send(0, 5)
    expect(count(a, 'admitted')).toBe(3) // its reservation, though the shared pool is full
    expect(a[3].throttled).toBe('"orders" v1: its reserved concurrency of 3 is in use (scaling.reservedConcurrency) and its queue of 0 is full (scaling.queue)')
    for (const r of b) if (r.state === 'admitted') r.release()
    expect(count(send(0, 1), 'admitted')).toBe(0) // capped at 3 with the account idle
    expect(gates[0].inFlight).toBe(3)
  })

  it('reserved concurrency caps a version with no account limit at all', () => {
    const {send} = two(undefined, {reservedConcurrency: 2}, {})
    expect(count(send(0, 4), 'admitted')).toBe(2)
    expect(count(send(1, 40), 'admitted')).toBe(40)
  })

  it('a version blocked by the account is not held for growth: the queue alone bounds it', () => {
    const {send} = two(1, {queue: 1}, {queue: 0})
    send(0, 1)
    expect(send(0, 2).map((r) => r.state)).toEqual(['held', 'throttled'])
    expect(send(1, 1)[0].state).toBe('throttled')
  })
})
