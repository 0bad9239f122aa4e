// Rejects cheaply before any work: 429 RL with Retry-After.
import type {KeyedRateLimiter} from '../policy/rate-limit.js'
import {rateLimited} from '../respond.js'
import type {Layer} from '../stack.js'

export const rateLimit =
  (service: string, limiter: KeyedRateLimiter, perSource: boolean): Layer =>
  (inner) =>
    function rateLimit(req, ctx, reply) {
      const decision = limiter.tryAcquire(req.source)
      if (!decision.allowed) return reply.fail(rateLimited(service, decision.retryAfterMs, perSource ? req.source : undefined))
      inner(req, ctx, reply)
    }
