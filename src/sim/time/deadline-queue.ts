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

export class DeadlineQueue {
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
  owner: DeadlineQueue | undefined = undefined
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
