// `policy.rateLimit`: one rate for the service, or (with `key` and `tiers`) one bucket
// per consumer at its tier's rate, the API gateway's "per tier / SLA" limits:
//
//   rateLimit: {algorithm: sliding-window, key: {claim: sub},
//               tiers: {by: {claim: plan}, limits: {free: 10/s, gold: {rate: 200/s, burst: 50}}, default: 5/s}}
import {type Checker, bool, def, enumOf, int, map, obj, oneOf, opt, record, refine, req, scalar, str} from './checker.js'
import {parseRate} from './duration.js'
import type {ConsumerKey, RateLimitAlgorithm, RateLimitConfig, RateTier, RateTiers} from './types.js'

const RATE_LIMITS = ['token-bucket', 'leaky-bucket', 'fixed-window', 'sliding-log', 'sliding-window'] as const satisfies readonly RateLimitAlgorithm[]

/** More buckets than this per service is a typo, not a plan (each is kept in the daemon's memory). */
export const MAX_CONSUMERS_LIMIT = 1_000_000

const RATE_EXPECTED = 'a rate like 200/s, 10/m, 5/h or 20/100ms'
const rate = scalar(RATE_EXPECTED, (v) => (typeof v === 'string' ? parseRate(v) : undefined), {type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*/\\s*\\S+\\s*$'})
const burst = int({min: 1})

/** One period's worth of requests may arrive at once unless told otherwise. */
const withBurst = (r: {requests: number; periodMs: number}, b: number | undefined): RateTier => ({
  requests: r.requests,
  periodMs: r.periodMs,
  burst: b ?? Math.max(1, Math.ceil(r.requests)),
})

// RFC 9110 token: what a header name may be.
const headerName = map(str({pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, expected: 'a header name like x-api-key'}), (h) => h.toLowerCase())

const consumerKey: Checker<ConsumerKey> = refine(obj({claim: opt(str({nonEmpty: true})), header: opt(headerName)}), (v, at) => {
  if (v.claim !== undefined && v.header === undefined) return {claim: v.claim}
  if (v.header !== undefined && v.claim === undefined) return {header: v.header}
  return at.error('expected exactly one of claim (a claim of the request\'s valid JWT) or header')
})

const tierRate = oneOf<RateTier>(`${RATE_EXPECTED}, or {rate, burst}`, {
  scalar: map(rate, (r) => withBurst(r, undefined)),
  map: map(obj({rate: req(rate), burst: opt(burst)}), (t) => withBurst(t.rate, t.burst)),
})

/** `default:` gives a rate, or names one of the tiers (checked against `limits` below). */
type DefaultTier = {rate: RateTier} | {name: string}
const defaultTier = oneOf<DefaultTier>(`${RATE_EXPECTED}, {rate, burst}, or the name of one of the tiers`, {
  scalar: scalar('a rate like 5/s or the name of one of the tiers', (v) => {
    if (typeof v !== 'string' && typeof v !== 'number') return undefined
    const parsed = typeof v === 'string' ? parseRate(v) : undefined
    return parsed ? {rate: withBurst(parsed, undefined)} : {name: String(v)}
  }, {type: 'string'}),
  map: map(obj({rate: req(rate), burst: opt(burst)}), (t) => ({rate: withBurst(t.rate, t.burst)})),
})

const tiers = refine(
  obj({by: req(consumerKey), limits: req(record(tierRate, {key: str({nonEmpty: true}), min: 1})), default: req(defaultTier)}),
  (t, at): {tiers: RateTiers; rate: RateTier} | undefined => {
    if ('rate' in t.default) return {tiers: {by: t.by, limits: t.limits}, rate: t.default.rate}
    const named = t.default.name
    if (!Object.hasOwn(t.limits, named)) {
      return at.child('default')!.error(`"${named}" is neither ${RATE_EXPECTED} nor one of the tiers (${Object.keys(t.limits).join(', ')})`)
    }
    return {tiers: {by: t.by, limits: t.limits, defaultTier: named}, rate: t.limits[named]}
  },
)

export const rateLimit: Checker<RateLimitConfig> = refine(
  obj({
    algorithm: def(enumOf(RATE_LIMITS), 'token-bucket'),
    rate: opt(rate),
    burst: opt(burst),
    perSource: opt(bool()),
    key: opt(consumerKey),
    tiers: opt(tiers),
    maxConsumers: opt(int({min: 1, max: MAX_CONSUMERS_LIMIT})),
  }),
  (r, at): RateLimitConfig | undefined => {
    let ok = true
    const fail = (where: string, message: string) => {
      at.child(where)!.errorAtKey(message)
      ok = false
    }
    if (r.tiers) {
      if (!r.key) fail('tiers', 'tiers need a key: whose bucket a tier\'s rate fills, e.g. key: {claim: sub} or key: {header: x-api-key}')
      if (r.rate) fail('rate', 'with tiers, tiers.default is the rate of a request with no tier or an unknown one; remove rate')
      if (r.burst !== undefined) fail('burst', 'with tiers, give burst per tier: limits: {gold: {rate: 200/s, burst: 50}}')
    } else if (!r.rate) {
      return at.error('missing required key "rate" (or tiers, with key)')
    }
    if (r.key && r.perSource) fail('perSource', 'perSource and key each say whose bucket a request fills; keep one')
    if (r.maxConsumers !== undefined && !r.key && !r.perSource) fail('maxConsumers', 'maxConsumers bounds the buckets of key or perSource; without them the service has one bucket')
    if (!ok) return undefined
    const tier = r.tiers?.rate ?? withBurst(r.rate!, r.burst)
    return {
      algorithm: r.algorithm,
      ...tier,
      perSource: r.perSource ?? false,
      ...(r.key ? {key: r.key} : {}),
      ...(r.tiers ? {tiers: r.tiers.tiers} : {}),
      ...(r.maxConsumers !== undefined ? {maxConsumers: r.maxConsumers} : {}),
    }
  },
)
