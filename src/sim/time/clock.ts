// Time as policies see it. Nothing on the data path or in a controller calls
// setTimeout, Date.now or performance.now directly: it is handed a Clock, so tests
// run on VirtualClock and a 30-minute canary takes a millisecond.
import {type Abortable, abortError, whenAborted} from '../abort-signal.js'

export interface Timer {
  /** Idempotent. */
  cancel(): void
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number
  /** Wall-clock milliseconds since the epoch (for spans and logs only). */
  wallNow(): number
  /** The wall-clock time of a monotonic reading (a span reads the clock once for both). */
  wallAt(monotonicMs: number): number
  setTimer(ms: number, fn: () => void): Timer
  sleep(ms: number, signal?: Abortable): Promise<void>
}

/** setTimeout's longest delay, 2^31 − 1 ms (24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1

export class RealClock implements Clock {
  // Read once: performance.timeOrigin is a getter into the native layer.
  private readonly origin = performance.timeOrigin

  now(): number {
    return performance.now()
  }

  wallNow(): number {
    // Sub-millisecond wall time, so fast hops keep their order in a trace.
    return this.origin + performance.now()
  }

  wallAt(monotonicMs: number): number {
    return this.origin + monotonicMs
  }

  setTimer(ms: number, fn: () => void): Timer {
    let handle: ReturnType<typeof setTimeout>
    // setTimeout fires a delay longer than MAX_TIMEOUT_MS at once: wait in legs instead.
    const arm = (left: number) => {
      handle = left > MAX_TIMEOUT_MS ? setTimeout(() => arm(left - MAX_TIMEOUT_MS), MAX_TIMEOUT_MS) : setTimeout(fn, Math.max(0, left))
    }
    arm(ms)
    return {cancel: () => clearTimeout(handle)}
  }

  sleep(ms: number, signal?: Abortable): Promise<void> {
    return sleepOn(this, ms, signal)
  }
}

/** One sleep implementation for every clock, so abort behaves the same in tests and production. */
export function sleepOn(clock: Clock, ms: number, signal?: Abortable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const timer = clock.setTimer(ms, () => {
      stopWaiting()
      resolve()
    })
    const stopWaiting = whenAborted(signal, () => {
      timer.cancel()
      reject(abortError(signal!))
    })
  })
}

interface Alarm {
  due: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/**
 * A clock that moves only when told. Alarms fire in (due, seq) order; the sequence
 * number breaks ties so runs are deterministic.
 */
export class VirtualClock implements Clock {
  private current: number
  private seq = 0
  private heap: Alarm[] = []

  constructor(start = 0, private readonly epochMs = 1_700_000_000_000) {
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
    const alarm: Alarm = {due: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false}
    this.push(alarm)
    return {cancel: () => { alarm.cancelled = true }}
  }

  sleep(ms: number, signal?: Abortable): Promise<void> {
    return sleepOn(this, ms, signal)
  }

  /** Number of alarms still waiting. */
  pending(): number {
    return this.heap.filter((a) => !a.cancelled).length
  }

  /**
   * Fires every alarm due up to now+ms, in order, and moves time only when nothing
   * else is pending: after each alarm, whatever it set going — promise chains and
   * nextTicks of any depth, and the alarms they set for the current time — runs first,
   * as tokio's paused clock and Envoy's simulated time advance only when idle. Work
   * waiting on real I/O, a real timer or an immediate of its own is not waited for:
   * it is outside simulated time.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms
    await settle()
    for (;;) {
      const next = this.peek()
      if (!next || next.due > target) break
      if (this.fire(this.pop()!)) await settle()
    }
    this.current = target
    await settle()
  }

  /** Runs until no alarm is left (bounded, so a periodic timer cannot hang a test). */
  async runAll(maxAlarms = 100_000): Promise<void> {
    await settle()
    for (let i = 0; i < maxAlarms; i++) {
      const next = this.pop()
      if (!next) return
      if (this.fire(next)) await settle()
    }
    throw new Error(`VirtualClock.runAll: more than ${maxAlarms} alarms; is a timer re-arming itself forever?`)
  }

  /** False for a cancelled alarm: nothing ran, so there is nothing to wait for. */
  private fire(alarm: Alarm): boolean {
    if (alarm.cancelled) return false
    this.current = Math.max(this.current, alarm.due)
    alarm.fn()
    return true
  }

  private less(a: Alarm, b: Alarm): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq)
  }

  private push(alarm: Alarm): void {
    const h = this.heap
    h.push(alarm)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(h[i], h[parent])) break
      ;[h[i], h[parent]] = [h[parent], h[i]]
      i = parent
    }
  }

  private peek(): Alarm | undefined {
    return this.heap[0]
  }

  private pop(): Alarm | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.less(h[l], h[m])) m = l
        if (r < h.length && this.less(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

/**
 * Resolves once every microtask and nextTick queued so far has run, and every one
 * those queue in turn: Node drains both queues completely before the next macrotask,
 * and an immediate is one.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export const realClock: Clock = new RealClock()
