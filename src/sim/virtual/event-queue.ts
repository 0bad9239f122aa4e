// `mesh sim`'s timeline: one queue of events ordered by (virtual time, sequence number),
// and the Clock the policies read it through. Not time/clock.ts's VirtualClock: that one
// lets every promise chain settle after each alarm (one macrotask per alarm), which tests
// of async code need and a million-request run cannot pay. Here the data path answers
// through Replies, not promises, so an event's consequences are done when its callback
// returns; the few places that still await (a retry's backoff, an injected fault, a
// chaos step) say so through `needsSettle`, and only then does the run wait for them. What the
// two clocks share (reading time, the alarms and their order) is time/alarm-clock.ts.
import {type Abortable, abortError, whenAborted} from '../abort-signal.js'
import {AlarmClock, settle} from '../time/alarm-clock.js'
import type {Clock} from '../time/clock.js'

export class SimClock extends AlarmClock {
  /** Something resolved or rejected a promise: run its continuations before time moves on. */
  needsSettle = false
  /** Events run so far (the benchmark's denominator). */
  fired = 0

  constructor(epochMs = 1_700_000_000_000) {
    super(0, epochMs)
  }

  /** As sleepOn, flagging the settle its continuation needs. */
  sleep(ms: number, signal?: Abortable): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        this.needsSettle = true
        return reject(abortError(signal))
      }
      const timer = this.setTimer(ms, () => {
        stopWaiting()
        this.needsSettle = true
        resolve()
      })
      const stopWaiting = whenAborted(signal, () => {
        timer.cancel()
        this.needsSettle = true
        reject(abortError(signal!))
      })
    })
  }

  /** A view of this clock for promise-based callers (the chaos runner): each of its timers is followed by a settle. */
  settling(): Clock {
    return {
      now: () => this.now(),
      wallNow: () => this.wallNow(),
      wallAt: (ms) => this.wallAt(ms),
      sleep: (ms, signal) => this.sleep(ms, signal),
      setTimer: (ms, fn) =>
        this.setTimer(ms, () => {
          this.needsSettle = true
          fn()
        }),
    }
  }

  /** Time of the next event still due, or undefined. */
  nextDue(): number | undefined {
    return this.peekArmed()?.due
  }

  /**
   * Runs events in order until `stop()` says so (checked before each), the queue is empty, or
   * the next event is past `untilMs`; time ends at the last event run. `alwaysSettle`: settle
   * after every event (while a promise-based layer is in play, e.g. an active fault).
   */
  async run(stop: () => boolean, untilMs = Infinity, alwaysSettle?: () => boolean): Promise<void> {
    for (;;) {
      if (stop()) return
      const due = this.nextDue()
      if (due === undefined || due > untilMs) {
        // Nothing timed is left, but a promise may still be on its way to setting a timer.
        await settle()
        if (stop() || this.nextDue() === undefined || this.nextDue()! > untilMs) return
        continue
      }
      const event = this.pop()!
      const fn = event.fn!
      event.fn = undefined
      this.current = event.due
      this.fired++
      fn()
      if (this.needsSettle || (alwaysSettle !== undefined && alwaysSettle())) {
        this.needsSettle = false
        await settle()
      }
    }
  }
}
