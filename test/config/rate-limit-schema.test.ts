// policy.rateLimit's per-consumer keys and tiers, and the errors a bad one gives, at the line.
import {describe, expect, it} from 'vitest'
import {parsed, problems, yaml} from './helpers.js'

// One simulated service `s` whose policy holds `lines`; the first policy line is line 6, indented by 6.
const file = (...lines: string[]) => yaml('name: shop', 'services:', '  s:', '    simulate: {}', '    policy:', ...lines.map((l) => `      ${l}`))
const rateLimitOf = (...lines: string[]) => parsed(file(...lines)).services[0].policy.rateLimit

describe('per-consumer rate limits', () => {
  it('reads a key and tiers; a tier is a rate or {rate, burst}; burst defaults to one period', () => {
    expect(rateLimitOf('rateLimit: {key: {claim: sub}, tiers: {by: {claim: plan}, limits: {free: 10/s, gold: {rate: 200/s, burst: 50}}, default: 5/s}}')).toEqual({
      algorithm: 'token-bucket',
      requests: 5,
      periodMs: 1000,
      burst: 5,
      perSource: false,
      key: {claim: 'sub'},
      tiers: {by: {claim: 'plan'}, limits: {free: {requests: 10, periodMs: 1000, burst: 10}, gold: {requests: 200, periodMs: 1000, burst: 50}}},
    })
  })

  it('lets default name a tier, and lower-cases header names', () => {
    expect(rateLimitOf('rateLimit: {algorithm: sliding-log, key: {header: X-API-Key}, tiers: {by: {header: X-Plan}, limits: {free: 10/m}, default: free}, maxConsumers: 500}')).toEqual({
      algorithm: 'sliding-log',
      requests: 10,
      periodMs: 60_000,
      burst: 10,
      perSource: false,
      key: {header: 'x-api-key'},
      tiers: {by: {header: 'x-plan'}, limits: {free: {requests: 10, periodMs: 60_000, burst: 10}}, defaultTier: 'free'},
      maxConsumers: 500,
    })
  })

  it('takes a key without tiers: each consumer its own bucket at `rate`', () => {
    expect(rateLimitOf('rateLimit: {rate: 3/s, key: {header: x-api-key}}')).toMatchObject({requests: 3, key: {header: 'x-api-key'}})
  })

  it('refuses a default that is neither a rate nor a tier, at the value', () => {
    expect(problems(file('rateLimit: {key: {claim: sub}, tiers: {by: {claim: plan}, limits: {free: 10/s, gold: 200/s}, default: platinum}}'))).toEqual([
      'mesh.yaml:6:109 services.s.policy.rateLimit.tiers.default: "platinum" is neither a rate like 200/s, 10/m, 5/h or 20/100ms nor one of the tiers (free, gold)',
    ])
  })

  it('refuses a bad rate in a tier, at the tier', () => {
    expect(problems(file('rateLimit:', '  key: {claim: sub}', '  tiers:', '    by: {claim: plan}', '    limits: {free: 10, gold: {rate: 200/sec}}', '    default: 5/s'))).toEqual([
      'mesh.yaml:10:26 services.s.policy.rateLimit.tiers.limits.free: expected a rate like 200/s, 10/m, 5/h or 20/100ms, got 10',
      'mesh.yaml:10:43 services.s.policy.rateLimit.tiers.limits.gold.rate: expected a rate like 200/s, 10/m, 5/h or 20/100ms, got "200/sec"',
    ])
  })

  it('wants exactly one of claim or header in key and in tiers.by', () => {
    expect(problems(file('rateLimit: {rate: 5/s, key: {claim: sub, header: x-api-key}}'))).toEqual([
      "mesh.yaml:6:35 services.s.policy.rateLimit.key: expected exactly one of claim (a claim of the request's valid JWT) or header",
    ])
    expect(problems(file('rateLimit: {key: {header: x-api-key}, tiers: {by: {}, limits: {free: 1/s}, default: free}}'))).toEqual([
      "mesh.yaml:6:57 services.s.policy.rateLimit.tiers.by: expected exactly one of claim (a claim of the request's valid JWT) or header",
    ])
    expect(problems(file('rateLimit: {rate: 5/s, key: {header: "x api key"}}'))).toEqual([
      'mesh.yaml:6:44 services.s.policy.rateLimit.key.header: expected a header name like x-api-key, got "x api key"',
    ])
  })

  it('says what goes with what: tiers need a key; no rate or burst beside tiers; key or perSource; maxConsumers needs one', () => {
    expect(problems(file('rateLimit: {tiers: {by: {claim: plan}, limits: {free: 1/s}, default: free}}'))).toEqual([
      "mesh.yaml:6:19 services.s.policy.rateLimit.tiers: tiers need a key: whose bucket a tier's rate fills, e.g. key: {claim: sub} or key: {header: x-api-key}",
    ])
    expect(problems(file('rateLimit: {rate: 5/s, burst: 2, key: {claim: sub}, tiers: {by: {claim: plan}, limits: {free: 1/s}, default: free}}'))).toEqual([
      'mesh.yaml:6:19 services.s.policy.rateLimit.rate: with tiers, tiers.default is the rate of a request with no tier or an unknown one; remove rate',
      'mesh.yaml:6:30 services.s.policy.rateLimit.burst: with tiers, give burst per tier: limits: {gold: {rate: 200/s, burst: 50}}',
    ])
    expect(problems(file('rateLimit: {rate: 5/s, perSource: true, key: {claim: sub}}'))).toEqual([
      'mesh.yaml:6:30 services.s.policy.rateLimit.perSource: perSource and key each say whose bucket a request fills; keep one',
    ])
    expect(problems(file('rateLimit: {rate: 5/s, maxConsumers: 10}'))).toEqual([
      'mesh.yaml:6:30 services.s.policy.rateLimit.maxConsumers: maxConsumers bounds the buckets of key or perSource; without them the service has one bucket',
    ])
    expect(problems(file('rateLimit: {key: {claim: sub}}'))).toEqual([
      'mesh.yaml:6:18 services.s.policy.rateLimit: missing required key "rate" (or tiers, with key)',
    ])
    expect(problems(file('rateLimit: {rate: 5/s, key: {claim: sub}, maxConsumers: 0}'))).toEqual([
      'mesh.yaml:6:63 services.s.policy.rateLimit.maxConsumers: expected an integer between 1 and 1000000, got 0',
    ])
  })
})
