// One simulated instance's worker pool in virtual time: `concurrency` jobs served at once,
// the rest wait in a FIFO queue (as model/capacity.ts does for a real simulated process,
// without its promises). It also keeps the sums queueing theory checks a run against:
// time waited, time served, slot-time busy, and the time-integral of jobs in the system
// (Little's law: L = λW).
//
//   enter(job) ──▶ slot free? ──yes──▶ job.start() … done() ──▶ the queue's head starts
//                     └─no──▶ queue ──(leave(job): the caller went away while queued)
import type {Clock} from '../time/clock.js'

export interface StationJob {
  /** A slot is this job's from now until it calls `done()` on the station. */
  start(): void
  /** Set by the station: when the job entered, and when it started (virtual ms). */
  enteredAt: number
  startedAt: number
  /** Set by the station: waiting in its queue now. */
  queued: boolean
}

export interface StationTotals {
  /** Jobs that entered, started (got a slot), and finished. */
  arrived: number
  started: number
  finished: number
  /** Sum of the time jobs waited for a slot (started jobs and those that left the queue). */
  waitedMs: number
  /** Sum of the time finished jobs held a slot. */
  servedMs: number
  /** ∫ busy slots dt. */
  busySlotMs: number
  /** ∫ (queued + busy) dt: jobs in the system. */
  inSystemMs: number
  /** Sum of the time finished and departed jobs spent in the system (W·n). */
  sojournMs: number
  departed: number
}

export class Station {
  private busy = 0
  // A FIFO as an array and a head index: shift() is O(n) on a long queue.
  private queue: Array<StationJob | undefined> = []
  // Jobs that left stay in the array until their turn (queued: false).
  private head = 0
  private waiting = 0
  private lastChange = 0
  readonly totals: StationTotals = {arrived: 0, started: 0, finished: 0, waitedMs: 0, servedMs: 0, busySlotMs: 0, inSystemMs: 0, sojournMs: 0, departed: 0}
  /** When its instance joined the run, and left it (the autoscaler's; undefined: it stayed): its capacity counts only between. */
  openedAt: number
  closedAt: number | undefined = undefined

  /** `concurrency`: jobs served at once; 0 is unbounded. */
  constructor(
    private readonly clock: Clock,
    readonly concurrency: number,
  ) {
    this.lastChange = clock.now()
    this.openedAt = this.lastChange
  }

  /** How long within [0, untilMs] it was part of the run (virtual ms). */
  aliveMs(untilMs: number): number {
    return Math.max(0, Math.min(this.closedAt ?? untilMs, untilMs) - this.openedAt)
  }

  /** Jobs waiting for a slot now. */
  get queued(): number {
    return this.waiting
  }

  get inService(): number {
    return this.busy
  }

  enter(job: StationJob): void {
    this.account()
    const now = this.clock.now()
    job.enteredAt = now
    this.totals.arrived++
    if (this.concurrency === 0 || this.busy < this.concurrency) return this.begin(job, now)
    job.queued = true
    this.queue.push(job)
    this.waiting++
  }

  /** A queued job gives its place up; false when it was not queued (it started, or left already). */
  leave(job: StationJob): boolean {
    // Left in the array and skipped when its turn comes: finding it would be O(queue).
    if (!job.queued) return false
    this.account()
    job.queued = false
    this.waiting--
    const now = this.clock.now()
    this.totals.waitedMs += now - job.enteredAt
    this.totals.sojournMs += now - job.enteredAt
    this.totals.departed++
    return true
  }

  /** A started job finished: its slot goes to the queue's head. */
  done(job: StationJob): void {
    this.account()
    const now = this.clock.now()
    this.busy--
    this.totals.finished++
    this.totals.servedMs += now - job.startedAt
    this.totals.sojournMs += now - job.enteredAt
    this.totals.departed++
    while (this.waiting > 0) {
      const next = this.queue[this.head]
      this.queue[this.head++] = undefined
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      if (next === undefined || !next.queued) continue
      next.queued = false
      this.waiting--
      this.totals.waitedMs += now - next.enteredAt
      return this.begin(next, now)
    }
    if (this.waiting === 0 && this.head > 0) {
      this.queue.length = 0
      this.head = 0
    }
  }

  /** Brings the time integrals up to now (call before reading them at the end of a run). */
  account(): void {
    const now = this.clock.now()
    const dt = now - this.lastChange
    if (dt > 0) {
      this.totals.busySlotMs += this.busy * dt
      this.totals.inSystemMs += (this.busy + this.waiting) * dt
      this.lastChange = now
    }
  }

  private begin(job: StationJob, now: number): void {
    this.busy++
    this.totals.started++
    job.startedAt = now
    job.start()
  }
}
