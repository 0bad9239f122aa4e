// A request's cancellation on the hot path. It has the AbortSignal surface the
// layers and the Clock use (Abortable: aborted, reason, add/removeEventListener('abort'))
// but none of EventTarget's machinery: an AbortController per request and per try
// showed up among the daemon's top costs. Only this module creates them.

import type {Abortable} from '../abort-signal.js'

type Listener = () => void

export class Cancellation implements Abortable {
  aborted = false
  reason: unknown = undefined
  // Most requests have one or two listeners at a time: those sit in fields, and only a
  // third makes an array (an empty array pushed to grows room for 17).
  private first: Listener | undefined = undefined
  private second: Listener | undefined = undefined
  private more: Listener[] | undefined = undefined

  /** What the layers read (CallContext.signal): the cancellation itself, as an AbortController's signal is its. */
  get signal(): Cancellation {
    return this
  }

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const {first, second, more} = this
    this.first = this.second = this.more = undefined
    first?.()
    second?.()
    if (more) for (const fn of more) fn()
  }

  /** Every listener is a once listener: a cancellation aborts once. */
  addEventListener(_type: 'abort', fn: Listener, _options?: {once?: boolean}): void {
    if (this.aborted) return
    if (this.first === undefined) this.first = fn
    else if (this.second === undefined) this.second = fn
    else (this.more ??= []).push(fn)
  }

  removeEventListener(_type: 'abort', fn: Listener): void {
    if (this.first === fn) this.first = undefined
    else if (this.second === fn) this.second = undefined
    else if (this.more) {
      const i = this.more.indexOf(fn)
      if (i >= 0) this.more.splice(i, 1)
    }
  }
}
