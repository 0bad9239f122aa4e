// The real clock, read at most once per callback. A request asks the time about ten
// times on the data path — the span, deadlines, budget and balancer on the way in, the
// outcome, outlier detection, spans and metrics on the way out — each batch within a
// few microseconds in one synchronous run. The first read in a callback goes to
// performance.now(); the rest get that value until Node's next tick queue runs, which it
// does after every callback it makes (I/O, timers, immediates). So a duration
// measured inside one callback reads 0; the daemon measures none that way.
import type {Abortable} from '../abort-signal.js'
import {type Clock, RealClock, sleepOn, type Timer} from './clock.js'

export class TickClock implements Clock {
  private cached = -1
  private readonly expire = () => {
    this.cached = -1
  }

  constructor(private readonly real: RealClock = new RealClock()) {}

  now(): number {
    if (this.cached < 0) {
      this.cached = this.real.now()
      // nextTick, not queueMicrotask: that one wraps every callback in an AsyncResource.
      process.nextTick(this.expire)
    }
    return this.cached
  }

  wallNow(): number {
    return this.real.wallAt(this.now())
  }

  wallAt(monotonicMs: number): number {
    return this.real.wallAt(monotonicMs)
  }

  setTimer(ms: number, fn: () => void): Timer {
    return this.real.setTimer(ms, fn)
  }

  sleep(ms: number, signal?: Abortable): Promise<void> {
    return sleepOn(this, ms, signal)
  }
}
