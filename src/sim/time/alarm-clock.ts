// The part of a clock that moves only when told, shared by time/clock.ts's VirtualClock
// (tests: settles after every alarm) and virtual/event-queue.ts's SimClock (`mesh sim`:
// settles only when asked). They differ in how they run their alarms, not in what an alarm
// is, how time reads or in which order alarms come due, so that is written once here.
import type {Clock, Timer} from './clock.js'
import type {Abortable} from '../abort-signal.js'

/** An alarm is its own Timer (one object per timer on `mesh sim`'s hot path, not two). */
export interface Alarm extends Timer {
  due: number
  /** Breaks ties between alarms due at the same time, so runs are deterministic. */
  seq: number
  /** Undefined once the alarm is cancelled or has fired. */
  fn: (() => void) | undefined
}

function cancelAlarm(this: Alarm): void {
  this.fn = undefined
}

/** Resolves once every microtask and nextTick queued so far (and those they queue) has run: an immediate is the next macrotask. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Monotonic time from `current`, wall time from `epochMs`, and alarms on a binary heap in
 * (due, seq) order. A cancelled alarm stays in the heap until it reaches the top; who pops
 * it finds `fn` undefined.
 */
export abstract class AlarmClock implements Clock {
  protected current: number
  private seq = 0
  private readonly heap: Alarm[] = []

  constructor(
    start: number,
    private readonly epochMs: number,
  ) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  wallNow(): number {
    return this.epochMs + this.current
  }

  wallAt(monotonicMs: number): number {
    return this.epochMs + monotonicMs
  }

  setTimer(ms: number, fn: () => void): Timer {
    const alarm: Alarm = {due: this.current + (ms > 0 ? ms : 0), seq: this.seq++, fn, cancel: cancelAlarm}
    this.push(alarm)
    return alarm
  }

  abstract sleep(ms: number, signal?: Abortable): Promise<void>

  /** Alarms not yet fired nor cancelled. */
  protected armed(): number {
    let n = 0
    for (const a of this.heap) if (a.fn !== undefined) n++
    return n
  }

  /** The earliest alarm still armed, left in place (cancelled ones above it are dropped). */
  protected peekArmed(): Alarm | undefined {
    while (this.heap.length > 0 && this.heap[0].fn === undefined) this.pop()
    return this.heap[0]
  }

  /** Takes the earliest alarm out, cancelled or not. */
  protected pop(): Alarm | undefined {
    const h = this.heap
    const n = h.length
    if (n === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (n === 1) return top
    // Sift the hole down and drop `last` into it: one write per level, no swaps.
    let i = 0
    const size = n - 1
    for (;;) {
      const l = 2 * i + 1
      if (l >= size) break
      const r = l + 1
      let m = l
      if (r < size && (h[r].due < h[l].due || (h[r].due === h[l].due && h[r].seq < h[l].seq))) m = r
      const c = h[m]
      if (last.due < c.due || (last.due === c.due && last.seq < c.seq)) break
      h[i] = c
      i = m
    }
    h[i] = last
    return top
  }

  private push(alarm: Alarm): void {
    const h = this.heap
    let i = h.length
    h.push(alarm)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent]
      if (p.due < alarm.due || (p.due === alarm.due && p.seq < alarm.seq)) break
      h[i] = p
      i = parent
    }
    h[i] = alarm
  }
}
