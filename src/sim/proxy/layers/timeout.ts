// A deadline on everything below. Pushed twice: above retry (the overall timeout,
// retries included) and below it (each try its own deadline). When it fires, the
// work below is aborted and the caller gets 504 UT. The deadline covers the wait
// for response headers; a body already streaming is not cut.
//
// The overall deadline cancels the whole request (ctx.cancel) rather than making a
// child AbortController: one controller per request is enough on the hot path.
import {Cancellation} from '../cancellation.js'
import {type ProxyError, timeoutError} from '../respond.js'
import type {CallContext, Layer, MeshResponse} from '../stack.js'

export interface TimeoutConfig {
  service: string
  timeoutMs: number
  which: 'overall' | 'per-try'
}

export const timeout =
  ({service, timeoutMs, which}: TimeoutConfig): Layer =>
  (inner) =>
    function timeout(req, ctx) {
      let below: CallContext = ctx
      let abortBelow: (e: ProxyError) => void = ctx.cancel
      let unlink: (() => void) | undefined
      if (which === 'per-try') {
        // Only this try is cut; the request (and its retries) go on.
        const {child, unlink: detach} = Cancellation.under(ctx.signal)
        unlink = detach
        below = {...ctx, signal: child.signal}
        abortBelow = (e) => child.abort(e)
      }
      return new Promise<MeshResponse>((resolve, reject) => {
        let settled = false
        const timer = ctx.clock.setTimer(timeoutMs, () => {
          if (settled) return
          settled = true
          unlink?.()
          const error = timeoutError(service, which, timeoutMs)
          ctx.decision.timeoutFired = which
          abortBelow(error)
          reject(error)
        })
        let pending: Promise<MeshResponse>
        try {
          pending = inner(req, below)
        } catch (error) {
          pending = Promise.reject(error)
        }
        pending.then(
          (response) => {
            if (settled) return void response.body?.destroy()
            settled = true
            timer.cancel()
            unlink?.()
            resolve(response)
          },
          (error) => {
            if (settled) return
            settled = true
            timer.cancel()
            unlink?.()
            reject(error)
          },
        )
      })
    }
