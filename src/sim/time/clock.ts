// Time as policies see it. Nothing on the data path or in a controller calls
// setTimeout, Date.now or performance.now directly: it is handed a Clock, so tests
// run on VirtualClock and a 30-minute canary takes a millisecond.
import {type Abortable, abortError, whenAborted} from '../abort-signal.js'
import {type Alarm, AlarmClock, settle} from './alarm-clock.js'

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

/**
 * A clock that moves only when told. Alarms fire in (due, seq) order; the sequence
 * number breaks ties so runs are deterministic.
 */
export class VirtualClock extends AlarmClock {
  constructor(start = 0, epochMs = 1_700_000_000_000) {
    super(start, epochMs)
  }

  sleep(ms: number, signal?: Abortable): Promise<void> {
    return sleepOn(this, ms, signal)
  }

  /** Number of alarms still waiting. */
  pending(): number {
    return this.armed()
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
      const next = this.peekArmed()
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
    const fn = alarm.fn
    if (fn === undefined) return false
    alarm.fn = undefined
    this.current = Math.max(this.current, alarm.due)
    fn()
    return true
  }
}

export const realClock: Clock = new RealClock()
