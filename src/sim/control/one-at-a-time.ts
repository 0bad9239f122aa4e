// `mesh apply`, `mesh stop` and `mesh start` change which instances run: two interleaved
// would start or stop the same ones. Each waits until every change asked for before it has
// finished, failed or not, as `kubectl apply`s against one object are serialized.
export class OneAtATime {
  private last: Promise<unknown> = Promise.resolve()

  /** Runs `fn` once every earlier one has settled; `admit` is asked then, and refuses by throwing. */
  run<T>(fn: () => Promise<T>, admit?: () => void): Promise<T> {
    const result = this.last.then(() => {
      admit?.()
      return fn()
    })
    this.last = result.catch(() => undefined)
    return result
  }
}
