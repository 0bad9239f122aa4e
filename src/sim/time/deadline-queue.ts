// Timers of one duration armed for every request (a policy's timeout). Their deadlines
// come due in the order they were set, so one list and one clock timer serve them all —
// Node keeps a list per duration internally too, but makes a Timeout object per
// setTimeout and links and unlinks it; on the data path that was two of those per call.
// A cancelled deadline is unlinked at once: it must not keep its request alive (and in
// the old generation of the heap) until the time it would have fired. The clock timer
// is not: when the last deadline goes, it is left to lapse (it finds nothing due and is
// not re-armed), so a mesh with one request at a time does not set and clear a timer
// per request.
import type {Clock, Timer} from './clock.js'

/** Who holds a deadline until it fires or is cancelled. */
interface Holder {
  unlink(d: Deadline): void
}

export class DeadlineQueue implements Holder {
  private head: Deadline | undefined
  private tail: Deadline | undefined
  private live = 0
  private timer: Timer | undefined

  constructor(
    readonly clock: Clock,
    readonly ms: number,
  ) {}

  /** Fires `deadline.onDeadline()` `ms` from now unless it is cancelled first; a deadline is scheduled once. */
  schedule<D extends Deadline>(deadline: D): D {
    deadline.owner = this
    deadline.at = this.clock.now() + this.ms
    const tail = this.tail
    if (tail) {
      tail.next = deadline
      deadline.prev = tail
    } else this.head = deadline
    this.tail = deadline
    this.live++
    this.timer ??= this.clock.setTimer(this.ms, this.fire)
    return deadline
  }

  /** Deadlines still waiting. */
  get size(): number {
    return this.live
  }

  /** @internal Takes a deadline out (cancelled or fired). */
  unlink(d: Deadline): void {
    const {prev, next} = d
    if (prev) prev.next = next
    else this.head = next
    if (next) next.prev = prev
    else this.tail = prev
    d.prev = d.next = undefined
    this.live--
  }

  private readonly fire = (): void => {
    this.timer = undefined
    const now = this.clock.now()
    let d = this.head
    while (d && d.at <= now) {
      d.done = true
      this.unlink(d)
      d.onDeadline()
      d = this.head
    }
    // The real clock may wake a fraction of a millisecond early; it then waits for the rest.
    if (this.head && !this.timer) this.timer = this.clock.setTimer(this.head.at - now, this.fire)
  }
}

/**
 * One entry of a queue. A caller with state of its own per deadline (a timed call)
 * extends it, so that state and the queue's links are one object.
 */
export abstract class Deadline implements Timer {
  prev: Deadline | undefined = undefined
  next: Deadline | undefined = undefined
  owner: Holder | undefined = undefined
  /** Its place in a DeadlineHeap (-1: in none). */
  slot = -1
  /** A deadline of its own duration (scheduleAlone): its clock timer. */
  private alone: Timer | undefined = undefined
  at = 0
  done = false

  abstract onDeadline(): void

  cancel(): void {
    if (this.done) return
    this.done = true
    if (this.alone) {
      this.alone.cancel()
      this.alone = undefined
    } else this.owner?.unlink(this)
  }

  /**
   * Fires `onDeadline()` `ms` from now on a clock timer of its own: for a duration no
   * other request shares (a caller's grpc-timeout), where a queue would hold one entry.
   */
  scheduleAlone(clock: Clock, ms: number): this {
    this.at = clock.now() + ms
    this.alone = clock.setTimer(ms, () => {
      if (this.done) return
      this.done = true
      this.alone = undefined
      this.onDeadline()
    })
    return this
  }
}

/**
 * Calls `fn` at clock time `at`, one wake at a time: arming again replaces the earlier
 * wake. A clock's timer does (`clockWake`); on the real clock that is setTimeout's
 * whole milliseconds, where `precise-wake.ts` comes within a fraction of one.
 */
export interface Wake {
  arm(at: number, fn: () => void): void
  disarm(): void
}

/** A Wake on the clock's own timer: exact on VirtualClock, ~1 ms on the real one. */
export function clockWake(clock: Clock): Wake {
  let timer: Timer | undefined
  return {
    arm(at, fn) {
      timer?.cancel()
      timer = clock.setTimer(at - clock.now(), () => {
        timer = undefined
        fn()
      })
    },
    disarm() {
      timer?.cancel()
      timer = undefined
    },
  }
}

/**
 * Deadlines of any duration (each request's simulated latency) over one wake, in a
 * min-heap by time: a thousand requests asleep cost one armed timer, not a thousand.
 * A cancelled deadline leaves the heap at once. The wake is re-armed only when the
 * earliest deadline changes.
 */
export class DeadlineHeap implements Holder {
  private readonly heap: Deadline[] = []
  private armedAt = Infinity

  constructor(
    readonly clock: Clock,
    private readonly wake: Wake = clockWake(clock),
  ) {}

  /** Fires `deadline.onDeadline()` `ms` from now unless it is cancelled first; a deadline is scheduled once. */
  schedule<D extends Deadline>(deadline: D, ms: number): D {
    deadline.owner = this
    deadline.at = this.clock.now() + Math.max(0, ms)
    deadline.slot = this.heap.length
    this.heap.push(deadline)
    this.up(deadline.slot)
    this.rearm()
    return deadline
  }

  /** Resolves `ms` from now (on the clock the heap was made with). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.schedule(new Sleeper(resolve), ms)
    })
  }

  /** Deadlines still waiting. */
  get size(): number {
    return this.heap.length
  }

  /** @internal Takes a deadline out (cancelled or fired). */
  unlink(d: Deadline): void {
    const h = this.heap
    const i = d.slot
    d.slot = -1
    const last = h.pop()!
    if (i < h.length) {
      h[i] = last
      last.slot = i
      this.down(i)
      this.up(last.slot)
    }
    // A cancelled earliest deadline leaves its wake armed: it finds nothing due and re-arms.
  }

  private rearm(): void {
    const first = this.heap[0]
    if (!first) return
    if (first.at < this.armedAt) {
      this.armedAt = first.at
      this.wake.arm(first.at, this.fire)
    }
  }

  private readonly fire = (): void => {
    this.armedAt = Infinity
    const now = this.clock.now()
    let d = this.heap[0]
    while (d && d.at <= now) {
      d.done = true
      this.unlink(d)
      d.onDeadline()
      d = this.heap[0]
    }
    this.rearm()
  }

  private up(i: number): void {
    const h = this.heap
    const d = h[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (h[parent].at <= d.at) break
      h[i] = h[parent]
      h[i].slot = i
      i = parent
    }
    h[i] = d
    d.slot = i
  }

  private down(i: number): void {
    const h = this.heap
    const d = h[i]
    const n = h.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && h[r].at < h[l].at ? r : l
      if (h[c].at >= d.at) break
      h[i] = h[c]
      h[i].slot = i
      i = c
    }
    h[i] = d
    d.slot = i
  }
}

class Sleeper extends Deadline {
  constructor(private readonly resolve: () => void) {
    super()
  }

  onDeadline(): void {
    this.resolve()
  }
}
