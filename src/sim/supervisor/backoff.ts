// When a supervised process dies unexpectedly, how long to wait before starting it
// again. Pure arithmetic over the times it is given; the Supervisor owns the timer.
//
//   crash ─▶ onExit(now, startedAt) ─▶ delay: 1s, 2s, 4s … maxMs   (a long run resets it)

export interface RestartBackoffOptions {
  initialMs?: number
  maxMs?: number
  /** A process that ran at least this long before crashing starts the sequence over. */
  resetAfterMs?: number
}

/** Crashes in a row, with no long run between them, after which we call it a crash loop. */
export const CRASH_LOOP_THRESHOLD = 3

// Kubernetes uses 10 s doubling to 5 min; a laptop wants a broken service retried sooner.
const DEFAULTS = {initialMs: 1000, maxMs: 30_000, resetAfterMs: 30_000}

export class RestartBackoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly resetAfterMs: number
  private consecutive = 0

  constructor(opts: RestartBackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? DEFAULTS.initialMs
    this.maxMs = opts.maxMs ?? DEFAULTS.maxMs
    this.resetAfterMs = opts.resetAfterMs ?? DEFAULTS.resetAfterMs
  }

  /** Records one exit and returns the delay before the restart. */
  onExit(nowMs: number, startedAtMs: number): number {
    if (nowMs - startedAtMs >= this.resetAfterMs) this.consecutive = 0
    this.consecutive++
    // Capping the exponent keeps 2 ** n finite however long the loop goes on.
    const exponent = Math.min(this.consecutive - 1, 52)
    return Math.min(this.initialMs * 2 ** exponent, this.maxMs)
  }

  /** Crashes in a row since the last reset. */
  get crashes(): number {
    return this.consecutive
  }

  get crashLoop(): boolean {
    return this.consecutive >= CRASH_LOOP_THRESHOLD
  }

  reset(): void {
    this.consecutive = 0
  }
}
