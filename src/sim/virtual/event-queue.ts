// `mesh sim`'s timeline: one queue of events ordered by (virtual time, sequence number),
// and the Clock the policies read it through. Not time/clock.ts's VirtualClock: that one
// lets every promise chain settle after each alarm (one macrotask per alarm), which tests
// of async code need and a million-request run cannot pay. Here the data path answers
// through Replies, not promises, so an event's consequences are done when its callback
// returns; the few places that still await (a retry's backoff, an injected fault, a
// chaos step) say so through `needsSettle`, and only then does the run wait for them.
import {type Abortable, abortError, whenAborted} from '../abort-signal.js'
import type {Clock, Timer} from '../time/clock.js'

interface SimEvent extends Timer {
  due: number
  seq: number
  fn: (() => void) | undefined
}

/** Resolves once every microtask and nextTick queued so far (and those they queue) has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function cancelEvent(this: SimEvent): void {
  this.fn = undefined
}

export class SimClock implements Clock {
  private current = 0
  private seq = 0
  private readonly heap: SimEvent[] = []
  /** Something resolved or rejected a promise: run its continuations before time moves on. */
  needsSettle = false
  /** Events run so far (the benchmark's denominator). */
  fired = 0

  constructor(private readonly epochMs = 1_700_000_000_000) {}

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
    const event: SimEvent = {due: this.current + (ms > 0 ? ms : 0), seq: this.seq++, fn, cancel: cancelEvent}
    this.push(event)
    return event
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
    while (this.heap.length > 0 && this.heap[0].fn === undefined) this.pop()
    return this.heap[0]?.due
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

  private push(event: SimEvent): void {
    const h = this.heap
    let i = h.length
    h.push(event)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent]
      if (p.due < event.due || (p.due === event.due && p.seq < event.seq)) break
      h[i] = p
      i = parent
    }
    h[i] = event
  }

  private pop(): SimEvent | undefined {
    const h = this.heap
    const n = h.length
    if (n === 0) return undefined
    const top = h[0]
    const last = h.pop()!
    if (n === 1) return top
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
}
