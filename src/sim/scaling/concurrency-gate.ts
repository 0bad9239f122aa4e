// Lambda's concurrency model and Knative's activator, as a pure policy over the Clock:
// who may have a request in flight on a scaled version's instances right now, who waits
// for a slot, and who is refused.
//
//   request ─▶ gate.enter ─┬─ admitted: a slot (account token + one instance's place) ─▶ claim(instance) … release(instance)
//                          ├─ held: FIFO, until a slot frees or an instance arrives (admitted), the timeout, a failed start
//                          └─ throttled: the queue is full and the version cannot grow (429 TH)
//
// A request for one instance (a call to its published address) is held for a place on that
// instance only, as Knative's queue-proxy holds what reaches its pod: admitted, it has
// already claimed it. It waits in the same queue bound and timeout, and a place that frees
// goes to the oldest waiter that can take it.
//
// A version's slots are its ready instances × containerConcurrency (0: one instance takes
// any number), so a request only ever goes to an instance with a place free. Across every
// scaled version an account (functions.accountConcurrency) counts requests in flight;
// a version with reservedConcurrency R has R of them to itself (no one else may take
// them) and never more (Lambda's reserved concurrency): the others share the rest.
// Nothing here knows HTTP: the activator layer (proxy/layers/activator.ts) turns the
// answers into replies.
import type {Clock, Timer} from '../time/clock.js'

/** What a version's `scaling:` says about admission (ScalingConfig's fields). */
export interface GateLimits {
  /** Requests one instance takes at once; 0 is no limit. */
  containerConcurrency: number
  maxScale: number
  /** Requests held at once past what new instances would take. */
  queue: number
  activatorTimeoutMs: number
  reservedConcurrency?: number
}

/** Why a held request got no slot: the activator timeout, a cold start that failed, the version gone. */
export interface Refusal {
  kind: 'timeout' | 'start-failed' | 'closed'
  reason: string
}

/** A request waiting for a slot; exactly one of the two is called, unless it leaves first (`leave`). */
export interface Waiter {
  /**
   * The slot is the waiter's: it claims an instance and releases exactly once. `waitedMs`: how
   * long it was held; `coldStart`: the version had no ready instance while it waited.
   */
  admitted(waitedMs: number, coldStart: boolean): void
  refused(refusal: Refusal): void
}

/** What `enter` decided: go now, wait (the waiter hears later), or a 429 with why. */
export type Entry = 'admitted' | 'held' | {throttled: string}

interface Held {
  waiter: Waiter
  /** The one instance it may go to (its published address was called); undefined: any of the version's. */
  instance: string | undefined
  /** Arrival order across every gate of the account: the oldest waiter anywhere goes first. */
  seq: number
  since: number
  coldStart: boolean
  timer: Timer
}

/**
 * Lambda's account pool: one per data plane, shared by every scaled version. `limit`
 * is read on each decision (`mesh apply` may change it); undefined is no account limit.
 */
export class ConcurrencyAccount {
  private readonly gates = new Set<ConcurrencyGate>()
  /** Requests in flight on versions without reserved concurrency: they share the unreserved pool. */
  private unreserved = 0
  private reservedTotal = 0
  private seq = 0
  private waking = false
  /** Requests held by any gate: with none (the usual case) a release looks at no gate. */
  private waiting = 0

  constructor(private readonly limit: () => number | undefined = () => undefined) {}

  /** @internal */
  register(gate: ConcurrencyGate): void {
    this.gates.add(gate)
    this.limitsChanged()
  }

  /** @internal */
  unregister(gate: ConcurrencyGate): void {
    this.gates.delete(gate)
    this.limitsChanged()
  }

  /** A version's reservedConcurrency (or the account limit) changed: the pools are recounted and waiters looked at again. */
  limitsChanged(): void {
    let total = 0
    for (const g of this.gates) total += g.limits.reservedConcurrency ?? 0
    this.reservedTotal = total
    this.wake()
  }

  /** Requests in flight on versions with no reservation (what `functions.accountConcurrency` minus the reservations caps). */
  get unreservedInFlight(): number {
    return this.unreserved
  }

  /** How many more requests `gate` may have in flight as far as the account goes (Infinity: no limit). */
  room(gate: ConcurrencyGate): number {
    const reserved = gate.limits.reservedConcurrency
    if (reserved !== undefined) return Math.max(0, reserved - gate.inFlight)
    const limit = this.limit()
    if (limit === undefined) return Infinity
    return Math.max(0, limit - this.reservedTotal - this.unreserved)
  }

  /** Why the account admits no more for `gate` (room(gate) is 0). */
  describeLimit(gate: ConcurrencyGate): string {
    const reserved = gate.limits.reservedConcurrency
    if (reserved !== undefined) return `its reserved concurrency of ${reserved} is in use (scaling.reservedConcurrency)`
    const others = this.reservedTotal > 0 ? `, ${this.reservedTotal} of it reserved for other versions` : ''
    return `the account's concurrency limit of ${this.limit()} is in use (functions.accountConcurrency${others})`
  }

  /** @internal A gate holds `n` more requests (fewer, when negative). */
  heldChanged(n: number): void {
    this.waiting += n
  }

  /** @internal */
  nextSeq(): number {
    return this.seq++
  }

  /** @internal A request was admitted on `gate`; `reserved`: it counts against the version's reservation, not the shared pool. */
  took(reserved: boolean): void {
    if (!reserved) this.unreserved++
  }

  /** @internal */
  gave(reserved: boolean): void {
    if (!reserved) this.unreserved--
  }

  /**
   * A slot freed or an instance arrived: the oldest held request anywhere that can go now
   * goes, and again, until none can. Not re-entered: an admission that ends at once (and
   * releases) is seen by the loop's next look.
   */
  wake(): void {
    if (this.waking || this.waiting === 0) return
    this.waking = true
    try {
      for (;;) {
        let best: ConcurrencyGate | undefined
        let bestSeq = Infinity
        for (const g of this.gates) {
          const seq = g.readySeq()
          if (seq < bestSeq) {
            best = g
            bestSeq = seq
          }
        }
        if (!best) return
        best.admitReady()
      }
    } finally {
      this.waking = false
    }
  }
}

const ADMITTED: Entry = 'admitted'
const HELD: Entry = 'held'

/** One scaled service-version's slots and its queue of held requests. */
export class ConcurrencyGate {
  /** Ready instances → requests in flight on each. */
  private ready = new Map<string, number>()
  /** Instances that left (draining) with requests still in flight: they count in flight, never as capacity. */
  private readonly leaving = new Map<string, number>()
  private usedOnReady = 0
  /** Admitted, not yet on an instance (between `enter` and `claim`). */
  private pending = 0
  private reservedInFlight = 0
  private unreservedInFlight = 0
  private readonly queue: Held[] = []
  /** Held for one instance each (in arrival order): they never block the queue, nor it them. */
  private readonly pinned: Held[] = []
  private closed = false

  constructor(
    readonly service: string,
    readonly version: string,
    private current: GateLimits,
    private readonly account: ConcurrencyAccount,
    private readonly clock: Clock,
  ) {
    account.register(this)
  }

  get limits(): GateLimits {
    return this.current
  }

  /** `mesh apply` changed `scaling:`: held requests are looked at again under the new limits. */
  setLimits(limits: GateLimits): void {
    this.current = limits
    this.account.limitsChanged()
  }

  /** Requests admitted and not yet released. */
  get inFlight(): number {
    return this.reservedInFlight + this.unreservedInFlight
  }

  /** Requests waiting for a slot. */
  get held(): number {
    return this.queue.length + this.pinned.length
  }

  get readyInstances(): number {
    return this.ready.size
  }

  /** The version's ready instances now (the endpoint set's): a new one wakes the oldest waiter. */
  setInstances(names: readonly string[]): void {
    const next = new Map<string, number>()
    let used = 0
    for (const name of names) {
      const n = this.ready.get(name) ?? this.leaving.get(name) ?? 0
      this.leaving.delete(name)
      next.set(name, n)
      used += n
    }
    for (const [name, n] of this.ready) if (!next.has(name) && n > 0) this.leaving.set(name, n)
    this.ready = next
    this.usedOnReady = used
    if (next.size === 0) for (const h of this.queue) h.coldStart = true
    for (const h of this.pinned) if (!next.has(h.instance!)) h.coldStart = true
    this.account.wake()
  }

  /** Whether `instance` has a place free (the balancer picks only among those). */
  isFree(instance: string): boolean {
    const cc = this.current.containerConcurrency
    const n = this.ready.get(instance)
    return n !== undefined && (cc === 0 || n < cc)
  }

  /**
   * A request arrives: admitted now (it holds a slot: claim, then release once), held (`waiter`
   * hears), or throttled. With `instance` (a call to its published address) it may go there
   * only, and admitted it has claimed it already.
   */
  enter(waiter: Waiter, instance?: string): Entry {
    // Waiters first (FIFO): and should a change have freed a slot without a wake (the account limit raised), they go now.
    if (this.held > 0) this.account.wake()
    if (instance === undefined ? this.queue.length === 0 && this.canAdmit() : this.canAdmitOn(instance)) {
      this.take()
      if (instance !== undefined) this.claim(instance)
      return ADMITTED
    }
    if (this.closed || this.held >= this.holdRoom()) return {throttled: this.throttleReason()}
    const timer = this.clock.setTimer(this.current.activatorTimeoutMs, () => this.expire(held))
    const coldStart = instance === undefined ? this.ready.size === 0 : !this.ready.has(instance)
    const held: Held = {waiter, instance, seq: this.account.nextSeq(), since: this.clock.now(), coldStart, timer}
    ;(instance === undefined ? this.queue : this.pinned).push(held)
    this.account.heldChanged(1)
    return HELD
  }

  /**
   * A mirrored copy: admitted only when a place is free now and no request waits for one
   * (a copy never goes before a real request, nor waits, nor wakes the version).
   */
  tryEnter(): boolean {
    if (this.held > 0 || !this.canAdmit()) return false
    this.take()
    return true
  }

  /** A held request gives up (its client left, a timeout above fired): out of the queue, its timer cancelled. */
  leave(waiter: Waiter): void {
    for (const list of [this.queue, this.pinned]) {
      const i = list.findIndex((h) => h.waiter === waiter)
      if (i < 0) continue
      list[i].timer.cancel()
      list.splice(i, 1)
      this.account.heldChanged(-1)
      return
    }
  }

  /** `instance` left the mesh for good: requests held for it alone are refused now, not at the timeout. */
  instanceGone(instance: string, reason: string): void {
    const gone = this.pinned.filter((h) => h.instance === instance)
    if (gone.length === 0) return
    this.pinned.splice(0, this.pinned.length, ...this.pinned.filter((h) => h.instance !== instance))
    this.account.heldChanged(-gone.length)
    for (const h of gone) {
      h.timer.cancel()
      h.waiter.refused({kind: 'closed', reason})
    }
  }

  /** The admitted request goes to `instance` (one the balancer chose among the free ones). */
  claim(instance: string): void {
    this.pending--
    const n = this.ready.get(instance)
    if (n !== undefined) {
      this.ready.set(instance, n + 1)
      this.usedOnReady++
    } else {
      this.leaving.set(instance, (this.leaving.get(instance) ?? 0) + 1)
    }
  }

  /** The admitted request is over (`instance`: the one it claimed; undefined when it never got one): its slot goes to the oldest waiter. */
  release(instance: string | undefined): void {
    if (instance === undefined) this.pending--
    else {
      const n = this.ready.get(instance)
      if (n !== undefined) {
        this.ready.set(instance, n - 1)
        this.usedOnReady--
      } else {
        const m = (this.leaving.get(instance) ?? 1) - 1
        if (m > 0) this.leaving.set(instance, m)
        else this.leaving.delete(instance)
      }
    }
    // The shared pool first: a reservation added while this request ran must not strand a shared count.
    const shared = this.unreservedInFlight > 0
    if (shared) this.unreservedInFlight--
    else this.reservedInFlight--
    this.account.gave(!shared)
    this.account.wake()
  }

  /** Starting instances for the version failed: every held request is told why at once. */
  failHeld(reason: string): void {
    this.refuseAll({kind: 'start-failed', reason})
  }

  /** The version is no longer served by this gate (its service removed): held requests are refused; releases still count. */
  close(reason: string): void {
    this.closed = true
    this.account.unregister(this)
    this.refuseAll({kind: 'closed', reason})
  }

  /** @internal The arrival number of the oldest held request that could go now (Infinity: none). */
  readySeq(): number {
    return this.readyWaiter()?.seq ?? Infinity
  }

  /** @internal A request could be admitted now: the account has room for it and an instance has a place. */
  canAdmit(): boolean {
    if (this.closed || this.account.room(this) === 0) return false
    const cc = this.current.containerConcurrency
    if (cc === 0) return this.ready.size > 0
    return this.pending + this.usedOnReady < this.ready.size * cc
  }

  /** @internal Admits the oldest held request that can go now (readySeq's). */
  admitReady(): void {
    const held = this.readyWaiter()!
    const list = held.instance === undefined ? this.queue : this.pinned
    list.splice(list.indexOf(held), 1)
    this.account.heldChanged(-1)
    held.timer.cancel()
    this.take()
    if (held.instance !== undefined) this.claim(held.instance)
    held.waiter.admitted(this.clock.now() - held.since, held.coldStart)
  }

  /** A request for `instance` alone could be admitted now: it is ready with a place free, and the account has room. */
  private canAdmitOn(instance: string): boolean {
    return this.isFree(instance) && this.canAdmit()
  }

  /** The oldest held request that could go now: the queue's head, or one held for an instance with a place. */
  private readyWaiter(): Held | undefined {
    if (this.closed || this.account.room(this) === 0) return undefined
    let best = this.queue.length > 0 && this.canAdmit() ? this.queue[0] : undefined
    for (const h of this.pinned) {
      if (best && h.seq > best.seq) break
      if (this.isFree(h.instance!)) return h
    }
    return best
  }

  private take(): void {
    this.pending++
    const reserved = this.current.reservedConcurrency !== undefined
    if (reserved) this.reservedInFlight++
    else this.unreservedInFlight++
    this.account.took(reserved)
  }

  /**
   * How many may be held: the queue, plus — while the version can still grow (below
   * maxScale, and the account has room) — what the instances it may yet start would take,
   * as Knative's activator holds requests for a revision that is scaling up.
   */
  private holdRoom(): number {
    const {queue, containerConcurrency: cc, maxScale} = this.current
    const account = this.account.room(this)
    const instances = Math.max(0, maxScale - this.ready.size)
    if (account === 0 || instances === 0) return queue
    return queue + Math.min(account, cc === 0 ? Infinity : instances * cc)
  }

  /** Why a request that found the queue full is refused (the reply's reason after "throttled: "). */
  private throttleReason(): string {
    const {queue, containerConcurrency: cc, maxScale} = this.current
    const which = `"${this.service}" ${this.version}`
    const full = `its queue of ${queue} is full (scaling.queue)`
    if (this.closed) return `${which} is no longer served`
    if (this.account.room(this) === 0) return `${which}: ${this.account.describeLimit(this)} and ${full}`
    const each = cc === 1 ? '1 request' : `${cc} requests`
    return `${which} runs ${this.ready.size} of maxScale ${maxScale} instances, busy with ${each} each (containerConcurrency), and ${full}`
  }

  private expire(held: Held): void {
    const list = held.instance === undefined ? this.queue : this.pinned
    const i = list.indexOf(held)
    if (i < 0) return
    list.splice(i, 1)
    this.account.heldChanged(-1)
    const {activatorTimeoutMs, containerConcurrency: cc} = this.current
    const waited = `within ${activatorTimeoutMs} ms (scaling.activatorTimeout)`
    const one = held.instance
    const why =
      one !== undefined
        ? this.ready.has(one)
          ? `instance ${one} of "${this.service}" ${this.version} had no free slot ${waited} (containerConcurrency ${cc})`
          : `instance ${one} of "${this.service}" ${this.version} was not ready ${waited}`
        : this.ready.size === 0
        ? `no instance of "${this.service}" ${this.version} became ready ${waited}`
        : this.account.room(this) === 0
          ? `"${this.service}" ${this.version} got no slot ${waited}: ${this.account.describeLimit(this)}`
          : `none of the ${this.ready.size} instances of "${this.service}" ${this.version} had a free slot ${waited} (containerConcurrency ${cc})`
    held.waiter.refused({kind: 'timeout', reason: why})
  }

  private refuseAll(refusal: Refusal): void {
    const all = [...this.queue.splice(0), ...this.pinned.splice(0)]
    this.account.heldChanged(-all.length)
    for (const h of all) {
      h.timer.cancel()
      h.waiter.refused(refusal)
    }
  }
}
