// A request's cancellation on the hot path. It has the AbortSignal surface the
// layers and the Clock use (aborted, reason, add/removeEventListener('abort')) but
// none of EventTarget's machinery: an AbortController per request and per try
// showed up among the daemon's top costs. Only this module creates them.

type Listener = () => void

export class Cancellation {
  aborted = false
  reason: unknown = undefined
  private listeners: Listener[] | undefined

  /** The AbortSignal view the layers take. */
  get signal(): AbortSignal {
    return this as unknown as AbortSignal
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listeners = this.listeners
    this.listeners = undefined
    if (listeners) for (const fn of listeners) fn()
  }

  addEventListener(_type: 'abort', fn: Listener): void {
    if (this.aborted) return
    ;(this.listeners ??= []).push(fn)
  }

  removeEventListener(_type: 'abort', fn: Listener): void {
    const l = this.listeners
    if (!l) return
    const i = l.indexOf(fn)
    if (i >= 0) l.splice(i, 1)
  }

  /** A child that aborts with its parent (a per-try deadline under the request's). */
  static under(parent: AbortSignal): {child: Cancellation; unlink: () => void} {
    const child = new Cancellation()
    if (parent.aborted) {
      child.abort(parent.reason)
      return {child, unlink: () => undefined}
    }
    const forward = () => child.abort(parent.reason)
    parent.addEventListener('abort', forward)
    return {child, unlink: () => parent.removeEventListener('abort', forward)}
  }
}
