// Timers of one duration armed for every request (a policy's timeout). Their deadlines
// come due in the order they were set, so one FIFO and one clock timer serve them all —
// Node keeps a list per duration internally too, but makes a Timeout object per
// setTimeout and links and unlinks it; on the data path that was two of those per call.
import type {Clock, Timer} from './clock.js'

export class DeadlineQueue {
  private queue: Deadline[] = []
  private head = 0
  private live = 0
  private timer: Timer | undefined

  constructor(
    readonly clock: Clock,
    readonly ms: number,
  ) {}

  /** Calls `fn` `ms` from now unless the returned timer is cancelled first. */
  add(fn: () => void): Timer {
    const deadline = new Deadline(this, this.clock.now() + this.ms, fn)
    this.queue.push(deadline)
    this.live++
    this.timer ??= this.clock.setTimer(this.ms, this.fire)
    return deadline
  }

  /** Deadlines still waiting. */
  get size(): number {
    return this.live
  }

  /** @internal A deadline was cancelled. */
  forget(): void {
    // Nothing left to wait for: drop the clock's timer too (a quiet mesh keeps none armed).
    if (--this.live === 0) {
      this.timer?.cancel()
      this.timer = undefined
      this.queue = []
      this.head = 0
    }
  }

  private readonly fire = (): void => {
    this.timer = undefined
    const now = this.clock.now()
    const queue = this.queue
    while (this.head < queue.length) {
      const d = queue[this.head]
      if (!d.cancelled) {
        if (d.at > now) break
        d.cancelled = true
        this.live--
        this.head++
        d.fn()
        // fn may have added deadlines (a new queue array only when everything was cancelled).
        if (this.queue !== queue) return
        continue
      }
      this.head++
    }
    if (this.head >= queue.length) {
      this.queue = []
      this.head = 0
      return
    }
    if (this.head > 1024 && this.head * 2 > queue.length) {
      this.queue = queue.slice(this.head)
      this.head = 0
    }
    // The real clock may wake a fraction of a millisecond early; it then waits for the rest.
    this.timer ??= this.clock.setTimer(this.queue[this.head].at - now, this.fire)
  }
}

class Deadline implements Timer {
  cancelled = false

  constructor(
    private readonly owner: DeadlineQueue,
    readonly at: number,
    readonly fn: () => void,
  ) {}

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    this.owner.forget()
  }
}
