// A deadline on everything below. Pushed twice: above retry (the overall timeout,
// retries included) and below it (each try its own deadline). When it fires before
// the response headers, the work below is aborted and the caller gets 504 UT.
//
// The overall deadline also covers the body, as Envoy's route timeout does: a body
// still streaming when it fires is cut (the client sees a reset; the spans say UT).
// A per-try deadline ends at the response headers: past them nothing can be retried.
//
// The overall deadline cancels the whole request (ctx.cancel) rather than making a
// child AbortController: one controller per request is enough on the hot path.
import type {ResponseBody} from '../body.js'
import {Cancellation} from '../cancellation.js'
import {type ProxyError, timeoutError} from '../respond.js'
import {DeadlineQueue} from '../../time/deadline-queue.js'
import {type CallContext, type Layer, type MeshResponse, onBodyDone} from '../stack.js'

export interface TimeoutConfig {
  service: string
  timeoutMs: number
  which: 'overall' | 'per-try'
}

export const timeout =
  ({service, timeoutMs, which}: TimeoutConfig): Layer =>
  (inner) => {
    // Every request of this layer waits the same time: one queue of deadlines, not a timer each.
    let deadlines: DeadlineQueue | undefined
    return function timeout(req, ctx) {
      if (deadlines?.clock !== ctx.clock) deadlines = new DeadlineQueue(ctx.clock, timeoutMs)
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
        let streaming: ResponseBody | undefined
        const timer = deadlines!.add(() => {
          if (streaming) {
            ctx.decision.timeoutFired = which
            return void streaming.destroy(timeoutError(service, which, timeoutMs))
          }
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
            unlink?.()
            if (which === 'overall' && response.body) {
              streaming = response.body
              onBodyDone(response, () => {
                streaming = undefined
                timer.cancel()
              })
            } else timer.cancel()
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
  }
