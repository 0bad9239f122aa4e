// Rejects cheaply before any work: 429 RL with Retry-After.
import type {KeyedRateLimiter} from '../policy/rate-limit.js'
import {rateLimited} from '../respond.js'
import type {Layer} from '../stack.js'

export const rateLimit =
  (service: string, limiter: KeyedRateLimiter, perSource: boolean): Layer =>
  (inner) =>
    function rateLimit(req, ctx) {
      const decision = limiter.tryAcquire(req.source)
      if (!decision.allowed) return Promise.reject(rateLimited(service, decision.retryAfterMs, perSource ? req.source : undefined))
      return inner(req, ctx)
    }
