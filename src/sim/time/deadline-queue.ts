// Timers of one duration armed for every request (a policy's timeout). Their deadlines
// come due in the order they were set, so one list and one clock timer serve them all —
// Node keeps a list per duration internally too, but makes a Timeout object per
// setTimeout and links and unlinks it; on the data path that was two of those per call.
// A cancelled deadline is unlinked at once: it must not keep its request alive (and in
// the old generation of the heap) until the time it would have fired.
import type {Clock, Timer} from './clock.js'

export class DeadlineQueue {
  private head: Deadline | undefined
  private tail: Deadline | undefined
  private live = 0
  private timer: Timer | undefined

  constructor(
    readonly clock: Clock,
    readonly ms: number,
  ) {}

  /** Calls `fn` `ms` from now unless the returned timer is cancelled first. */
  add(fn: () => void): Timer {
    const deadline = new Deadline(this, this.clock.now() + this.ms, fn)
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
    // Nothing left to wait for: drop the clock's timer too (a quiet mesh keeps none armed).
    if (--this.live === 0 && this.timer) {
      this.timer.cancel()
      this.timer = undefined
    }
  }

  private readonly fire = (): void => {
    this.timer = undefined
    const now = this.clock.now()
    let d = this.head
    while (d && d.at <= now) {
      d.done = true
      this.unlink(d)
      d.fn()
      d = this.head
    }
    // The real clock may wake a fraction of a millisecond early; it then waits for the rest.
    if (this.head && !this.timer) this.timer = this.clock.setTimer(this.head.at - now, this.fire)
  }
}

class Deadline implements Timer {
  prev: Deadline | undefined
  next: Deadline | undefined
  done = false

  constructor(
    private readonly owner: DeadlineQueue,
    readonly at: number,
    readonly fn: () => void,
  ) {}

  cancel(): void {
    if (this.done) return
    this.done = true
    this.owner.unlink(this)
  }
}
