// Waiting on an AbortSignal — a real one, or the data path's Cancellation, which has the
// same surface. A wait that can be aborted starts at once if the signal already is, and
// stops listening when it ends some other way, so a long-lived signal collects no listeners.

const NOTHING = (): void => undefined

/** What a wait reads of a signal: an AbortSignal has it, and so does a Cancellation. */
export interface Abortable {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener(type: 'abort', fn: () => void, options?: {once?: boolean}): void
  removeEventListener(type: 'abort', fn: () => void): void
}

/** Runs `fn` once `signal` aborts (at once if it has); the function returned stops the wait. */
export function whenAborted(signal: Abortable | undefined, fn: () => void): () => void {
  if (!signal) return NOTHING
  if (signal.aborted) {
    fn()
    return NOTHING
  }
  signal.addEventListener('abort', fn, {once: true})
  return () => signal.removeEventListener('abort', fn)
}

/** Why `signal` aborted, as an Error: a reason that is not one reads "aborted". */
export function abortError(signal: Abortable): Error {
  const reason = signal.reason
  return reason instanceof Error ? reason : new Error('aborted')
}

/**
 * Waits for `promise` unless `signal` aborts first: exactly one of the callbacks runs, `aborted`
 * at once — a caller that leaves is answered then, not when the work it started ends.
 */
export function settleUnlessAborted<T>(
  signal: Abortable,
  promise: Promise<T>,
  on: {value(value: T): void; error(error: unknown): void; aborted(): void},
): void {
  let settled = false
  const stop = whenAborted(signal, () => {
    settled = true
    on.aborted()
  })
  if (settled) return
  promise.then(
    (value) => {
      if (settled) return
      settled = true
      stop()
      on.value(value)
    },
    (error) => {
      if (settled) return
      settled = true
      stop()
      on.error(error)
    },
  )
}
