// `deploy:` on a service: how `mesh canary` and `mesh rollout` deploy it, in their flags'
// words (camelCase), so a team writes its canary once and `mesh export kubernetes --rollouts`
// carries the same steps and thresholds to Flagger or Argo Rollouts:
//
//   deploy: {strategy: canary, steps: [10, 50, 100], interval: 30s, maxErrorRate: 1%, maxP99: 300ms}
//
// Only the keys written are kept: a flag on the command line wins over them, and the flags'
// own defaults (deploy-flags.ts) fill the rest, in one place.
import {array, bool, checker, duration, enumOf, int, obj, opt, refine, scalar, str, text, type Checker} from './checker.js'
import {parseRatio} from './duration.js'
import type {DeployConfig} from './types.js'

const STRATEGIES = ['canary', 'blue-green', 'rolling'] as const

/** Which strategy reads each key that is not shared; the rest (check, progressDeadline) are everyone's but rolling's check. */
const OWNER: Record<string, DeployConfig['strategy']> = {
  steps: 'canary',
  interval: 'canary',
  maxErrorRate: 'canary',
  maxP99: 'canary',
  compareToPrimary: 'canary',
  failureThreshold: 'canary',
  minRequests: 'canary',
  match: 'canary',
  mirror: 'canary',
  smoke: 'blue-green',
  keep: 'blue-green',
  maxSurge: 'rolling',
  maxUnavailable: 'rolling',
}

const percent = scalar('a percentage like 1% (or a ratio between 0 and 1)', (v) => (typeof v === 'string' || typeof v === 'number' ? parseRatio(v) : undefined), {
  anyOf: [{type: 'number', minimum: 0, maximum: 1}, {type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*%?\\s*$'}],
})

const steps = refine(array(int({min: 1, max: 100, expected: 'a percentage between 1 and 100'}), {min: 1}), (v, at) =>
  v.every((x, i) => i === 0 || x > v[i - 1]) ? v : at.error(`expected increasing percentages like [5, 25, 50, 100], got [${v.join(', ')}]`),
)

/** `{x-canary: "true"}`: one header and its value, as --match x-canary=true. */
const match: Checker<{name: string; value: string}> = checker(
  'one header and its value, like {x-canary: "true"}',
  (at) => {
    const pairs = at.entries()
    if (at.kind !== 'map' || pairs.length !== 1) return at.expected('one header and its value, like {x-canary: "true"}')
    const [{key, at: value}] = pairs
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) return value.errorAtKey(`"${key}" is not a header name`)
    const v = text()(value)
    return v === undefined ? undefined : {name: key.toLowerCase(), value: v}
  },
  {description: 'one header and its value, like {x-canary: "true"}', type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: {type: ['string', 'number', 'boolean']}},
)

const fields = obj({
  strategy: opt(enumOf(STRATEGIES)),
  steps: opt(steps),
  interval: opt(duration({min: 1})),
  maxErrorRate: opt(percent),
  maxP99: opt(duration({min: 1})),
  compareToPrimary: opt(bool()),
  failureThreshold: opt(int({min: 1})),
  minRequests: opt(int({min: 1})),
  match: opt(match),
  mirror: opt(bool()),
  smoke: opt(str({pattern: /^[A-Za-z]+\s+\/\S*$/, expected: "a request like 'GET /healthz'"})),
  keep: opt(duration()),
  maxSurge: opt(int({min: 0})),
  maxUnavailable: opt(int({min: 0})),
  check: opt(str({nonEmpty: true, expected: "a shell command like 'npm run e2e'"})),
  progressDeadline: opt(duration({min: 1})),
})

export const deploy: Checker<DeployConfig> = refine(fields, (d, at): DeployConfig | undefined => {
  const strategy = d.strategy ?? 'canary'
  let ok = true
  for (const [key, owner] of Object.entries(OWNER)) {
    const child = at.child(key)
    if (child && owner !== strategy) {
      child.errorAtKey(`${key} is for strategy: ${owner}; this deploy is ${strategy}${d.strategy === undefined ? ' (the default)' : ''}`)
      ok = false
    }
  }
  if (d.check !== undefined && strategy === 'rolling') {
    at.child('check')!.errorAtKey('check runs before traffic moves to the new version: rolling moves it instance by instance; use strategy: blue-green or canary')
    ok = false
  }
  if (d.maxSurge === 0 && d.maxUnavailable === 0) {
    at.child('maxUnavailable')!.error('maxSurge and maxUnavailable cannot both be 0 (the rollout could never make progress)')
    ok = false
  }
  if (!ok) return undefined
  const out: DeployConfig = {strategy}
  const set = <K extends keyof DeployConfig>(key: K, value: DeployConfig[K] | undefined) => {
    if (value !== undefined) out[key] = value
  }
  set('steps', d.steps)
  set('intervalMs', d.interval)
  set('maxErrorRate', d.maxErrorRate)
  set('maxP99Ms', d.maxP99)
  set('compareToPrimary', d.compareToPrimary)
  set('failureThreshold', d.failureThreshold)
  set('minRequests', d.minRequests)
  set('match', d.match)
  set('mirror', d.mirror)
  set('smoke', d.smoke)
  set('keepMs', d.keep)
  set('maxSurge', d.maxSurge)
  set('maxUnavailable', d.maxUnavailable)
  set('check', d.check)
  set('progressDeadlineMs', d.progressDeadline)
  return out
})
