// Rejects cheaply before any work: 429 RL with Retry-After. Every answer, admitted or
// refused, says where the caller's limit stands in the IETF draft's headers
// (draft-ietf-httpapi-ratelimit-headers): RateLimit-Limit, -Remaining and -Reset, as
// they were right after this request was counted.
import type {HeaderPairs} from '../headers.js'
import type {KeyedRateLimiter, Quota} from '../policy/rate-limit.js'
import {rateLimited} from '../respond.js'
import type {Layer, MeshResponse, Reply} from '../stack.js'

const LIMIT = 'ratelimit-limit'
const REMAINING = 'ratelimit-remaining'
const RESET = 'ratelimit-reset'

export const rateLimit =
  (service: string, limits: KeyedRateLimiter): Layer =>
  (inner) =>
    function rateLimit(req, ctx, reply) {
      // The limiter itself, not its key, goes with the request: dropped from the consumers
      // map meanwhile, it still answers for this request. It holds nothing to give back.
      const limiter = limits.limiterFor(req)
      const now = ctx.clock.now()
      const decision = limiter.tryAcquire(now)
      const quota = limiter.quota(now)
      if (!decision.allowed) return reply.fail(rateLimited(service, decision.retryAfterMs, limits.whose(req), quotaHeaders(quota)))
      inner(req, ctx, new WithQuota(reply, quota))
    }

/** The draft's values: whole seconds for Reset, rounded up so a client waiting that long finds the quota whole. */
export function quotaHeaders(quota: Quota): Record<string, string> {
  return {[LIMIT]: String(quota.limit), [REMAINING]: String(quota.remaining), [RESET]: String(Math.ceil(quota.resetMs / 1000))}
}

/** Adds the headers to an admitted answer, in place of any the instance sent: the client is held to the mesh's limit here. */
class WithQuota implements Reply {
  constructor(
    private readonly next: Reply,
    private readonly quota: Quota,
  ) {}

  ok(response: MeshResponse): void {
    const headers = withoutQuotaHeaders(response.headers)
    const quota = quotaHeaders(this.quota)
    headers.push(LIMIT, quota[LIMIT], REMAINING, quota[REMAINING], RESET, quota[RESET])
    response.headers = headers
    this.next.ok(response)
  }

  fail(error: unknown): void {
    this.next.fail(error)
  }
}

function withoutQuotaHeaders(pairs: HeaderPairs): HeaderPairs {
  let found = false
  for (let i = 0; i < pairs.length; i += 2) if (isQuotaHeader(pairs[i])) found = true
  return found ? pairs.filter((_, i) => i % 2 === 1 ? !isQuotaHeader(pairs[i - 1]) : !isQuotaHeader(pairs[i])) : pairs
}

const isQuotaHeader = (name: string): boolean =>
  (name.length === LIMIT.length || name.length === REMAINING.length || name.length === RESET.length) &&
  (name.toLowerCase() === LIMIT || name.toLowerCase() === REMAINING || name.toLowerCase() === RESET)
