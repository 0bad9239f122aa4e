// A simulated server's worker pool: N requests are served at once and the rest wait
// in a FIFO queue, so latency grows under load the way a real server's does.
//
//   acquire() ──▶ slot free? ──yes──▶ run ──▶ release() ──▶ hand the slot to the queue's head
//                     └─no──▶ queue (FIFO) ──────────────────────────────┘
import {abortError, whenAborted} from '../abort-signal.js'

/** Gives the slot back. Idempotent. */
export type Release = () => void

interface Waiter {
  grant: (release: Release) => void
  reject: (error: unknown) => void
  stopWaiting: () => void
}

export class Capacity {
  private active = 0
  private readonly queue: Waiter[] = []

  /** @param limit requests served at once; 0 means unbounded. */
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`capacity limit must be a non-negative integer, got ${limit}`)
    }
  }

  /** Requests holding a slot now. */
  get inFlight(): number {
    return this.active
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.queue.length
  }

  /**
   * Resolves with a release function once a slot is held. An abort while queued
   * removes the waiter and rejects with the signal's reason.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.limit === 0 || this.active < this.limit) {
      this.active++
      return Promise.resolve(this.releaser())
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {grant: resolve, reject, stopWaiting: () => undefined}
      this.queue.push(waiter)
      waiter.stopWaiting = whenAborted(signal, () => {
        const i = this.queue.indexOf(waiter)
        if (i >= 0) this.queue.splice(i, 1)
        reject(abortError(signal!))
      })
    })
  }

  /** Runs fn while holding a slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal)
    try {
      return await fn()
    } finally {
      release()
    }
  }

  private releaser(): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.queue.shift()
      if (next) {
        // The slot passes straight to the head of the queue: `active` is unchanged,
        // so a newcomer cannot overtake a waiter between release and grant.
        next.stopWaiting()
        next.grant(this.releaser())
      } else {
        this.active--
      }
    }
  }
}
