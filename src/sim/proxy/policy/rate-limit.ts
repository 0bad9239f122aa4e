// Rate limiting at a service's inbound side: one algorithm from `policy.rateLimit`,
// one limiter for the whole service, one per calling source (perSource), or one per
// consumer at its tier's rate (`key`, `tiers`: the API gateway's "per tier / SLA").
// A refused request becomes 429 RL with Retry-After = retryAfterMs rounded up to
// seconds (respond.ts). It runs before any other work, so it must be cheap.
//
// `burst` shapes token-bucket and leaky-bucket (how many may arrive at once);
// the window and log algorithms admit `requests` per period and ignore it.
import {createHash} from 'node:crypto'
import {formatDuration} from '../../config/duration.js'
import type {ConsumerKey, RateLimitAlgorithm, RateLimitConfig, RateTier} from '../../config/types.js'
import {LruMap} from '../../lru-map.js'
import type {Clock} from '../../time/clock.js'
import {firstHeader} from '../headers.js'
import type {MeshRequest} from '../stack.js'
import type {RateLimiter} from './rate-limit/decision.js'
import {FixedWindow} from './rate-limit/fixed-window.js'
import {LeakyBucket} from './rate-limit/leaky-bucket.js'
import {SlidingLog} from './rate-limit/sliding-log.js'
import {SlidingWindow} from './rate-limit/sliding-window.js'
import {TokenBucket} from './rate-limit/token-bucket.js'

export {ALLOWED, type Quota, type RateDecision, type RateLimiter} from './rate-limit/decision.js'

/**
 * Consumers (or sources) with limiters of their own, per service, unless `maxConsumers`
 * says otherwise; beyond it the least recently seen one is dropped. One is about 650 bytes
 * with a 40-character key (sliding-log: plus 8 per request of its rate it remembers), so
 * 10,000 are about 7 MB, 24 MB for sliding-log at 200/s (bench/rate-limit-consumers.js).
 */
export const DEFAULT_MAX_CONSUMERS = 10_000

/** A consumer key longer than this is kept as its SHA-256, so a long header cannot grow the map's memory. */
const MAX_KEY_LENGTH = 64

/** What a limiter reads of a request to find its bucket. */
export type RateLimitedRequest = Pick<MeshRequest, 'source' | 'headers' | 'auth'>

export interface KeyedRateLimiter {
  readonly algorithm: RateLimitAlgorithm
  /**
   * The limiter `req` draws from: the service's one, its source's (perSource), or its
   * consumer's at its tier (`key`); a request that names no consumer shares one anonymous
   * limiter at the default tier. A consumer's first request creates its limiter.
   */
  limiterFor(req: RateLimitedRequest): RateLimiter
  /**
   * Whose limit refused `req`, as the refusal's reason says it (` from "frontend"`, ` from
   * claim sub "alice" (tier gold: 200/1s)`): never an API key itself, only a fingerprint of it.
   */
  whose(req: RateLimitedRequest): string
  /** Limiters held for consumers or sources (the anonymous one not counted); 1 for the whole service. */
  size(): number
}

export function createLimiter(config: RateTier & {algorithm: RateLimitAlgorithm}, nowMs: number): RateLimiter {
  const {requests, periodMs, burst} = config
  // Counting algorithms need a whole number of requests per period.
  const limit = Math.max(1, Math.floor(requests))
  switch (config.algorithm) {
    case 'token-bucket':
      return new TokenBucket(requests, periodMs, burst, nowMs)
    case 'leaky-bucket':
      return new LeakyBucket(requests, periodMs, burst)
    case 'fixed-window':
      return new FixedWindow(limit, periodMs)
    case 'sliding-log':
      return new SlidingLog(limit, periodMs)
    case 'sliding-window':
      return new SlidingWindow(limit, periodMs)
  }
}

export function createRateLimiter(config: RateLimitConfig, clock: Clock): KeyedRateLimiter {
  const {algorithm} = config
  if (!config.perSource && !config.key) {
    const limiter = createLimiter(config, clock.now())
    return {algorithm, limiterFor: () => limiter, whose: () => '', size: () => 1}
  }
  const tiers = tierTable(config)
  const consumerOf = config.key ? (req: RateLimitedRequest) => valueOf(config.key!, req) : (req: RateLimitedRequest) => req.source
  // A consumer's limiters by tier: one moved to another plan gets that plan's bucket, and
  // switching back and forth cannot refill one. Keyed by the value as the request carries it:
  // a key built per request (tier + consumer) costs a string's flattening and hashing, ~1 µs.
  // No limiter holds a count for a request in flight, so dropping a consumer loses only its
  // history: it starts afresh if it comes back.
  const consumers = new LruMap<string, Array<RateLimiter | undefined>>(config.maxConsumers ?? DEFAULT_MAX_CONSUMERS)
  let anonymous: RateLimiter | undefined
  return {
    algorithm,
    limiterFor(req) {
      const consumer = consumerOf(req)
      if (consumer === undefined) return (anonymous ??= createLimiter(tiers.rates[tiers.fallback], clock.now()))
      const tier = tiers.of(req)
      const id = consumer.length > MAX_KEY_LENGTH ? fingerprint(consumer) : consumer
      let byTier = consumers.get(id)
      if (byTier === undefined) {
        byTier = []
        consumers.set(id, byTier)
      }
      return (byTier[tier] ??= createLimiter(tiers.rates[tier], clock.now()))
    },
    whose(req) {
      const consumer = consumerOf(req)
      if (!config.key) return ` from "${consumer}"`
      const tier = consumer === undefined ? tiers.fallback : tiers.of(req)
      const rate = tiers.rates[tier]
      const at = config.tiers ? `tier ${tiers.names[tier] ?? 'default'}: ${rate.requests}/${formatDuration(rate.periodMs)}` : undefined
      const name = 'claim' in config.key ? `claim ${config.key.claim}` : config.key.header
      if (consumer === undefined) return ` without ${name} (they share one bucket${at ? `; ${at}` : ''})`
      // A header key is a secret (an API key): the reason names a fingerprint of it, as logs should.
      const who = 'claim' in config.key ? `${name} "${consumer.slice(0, MAX_KEY_LENGTH)}"` : `${name} #${fingerprint(consumer).slice(0, 8)}`
      return ` from ${who}${at ? ` (${at})` : ''}`
    },
    size: () => consumers.size,
  }
}

/** A claim's or a header's value, when the request carries a usable one. */
function valueOf(key: ConsumerKey, req: RateLimitedRequest): string | undefined {
  if ('header' in key) {
    const v = firstHeader(req.headers, key.header)
    return v === '' ? undefined : v
  }
  const v = req.auth?.claims?.[key.claim]
  if (typeof v === 'string') return v === '' ? undefined : v
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined
}

const fingerprint = (value: string): string => createHash('sha256').update(value).digest('hex')

interface TierTable {
  /** Each tier's rate and algorithm; index 0 is the default rate of `rate:` or `tiers.default`. */
  rates: Array<RateTier & {algorithm: RateLimitAlgorithm}>
  /** Tier names by index (index 0 has none unless `tiers.default` names a tier). */
  names: Array<string | undefined>
  /** The tier of a request that names none, or one that is not in `limits`. */
  fallback: number
  of(req: RateLimitedRequest): number
}

function tierTable(config: RateLimitConfig): TierTable {
  const {algorithm} = config
  const rates = [{algorithm, requests: config.requests, periodMs: config.periodMs, burst: config.burst}]
  const names: Array<string | undefined> = [undefined]
  const index = new Map<string, number>()
  for (const [name, rate] of Object.entries(config.tiers?.limits ?? {})) {
    index.set(name, rates.length)
    rates.push({algorithm, ...rate})
    names.push(name)
  }
  const named = config.tiers?.defaultTier
  const fallback = named === undefined ? 0 : index.get(named)!
  const by = config.tiers?.by
  if (!by) return {rates, names, fallback, of: () => fallback}
  return {
    rates,
    names,
    fallback,
    of(req) {
      const tier = valueOf(by, req)
      return (tier === undefined ? undefined : index.get(tier)) ?? fallback
    },
  }
}
