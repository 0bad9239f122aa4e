// A deadline on everything below. Pushed twice: above retry (the overall timeout,
// retries included) and below it (each try its own deadline). When it fires, the
// work below is aborted and the caller gets 504 UT. The deadline covers the wait
// for response headers; a body already streaming is not cut.
import {type ProxyError, timeoutError} from '../respond.js'
import type {Layer} from '../stack.js'

export interface TimeoutConfig {
  service: string
  timeoutMs: number
  which: 'overall' | 'per-try'
}

export const timeout =
  ({service, timeoutMs, which}: TimeoutConfig): Layer =>
  (inner) =>
    async function timeout(req, ctx) {
      const controller = new AbortController()
      const parent = ctx.signal
      const forward = () => controller.abort(parent.reason)
      if (parent.aborted) forward()
      else parent.addEventListener('abort', forward, {once: true})
      let timer: {cancel(): void} | undefined
      const fired = new Promise<never>((_, reject) => {
        timer = ctx.clock.setTimer(timeoutMs, () => {
          const error: ProxyError = timeoutError(service, which, timeoutMs)
          ctx.decision.timeoutFired = which
          controller.abort(error)
          reject(error)
        })
      })
      try {
        return await Promise.race([inner(req, {...ctx, signal: controller.signal}), fired])
      } finally {
        timer!.cancel()
        parent.removeEventListener('abort', forward)
      }
    }
