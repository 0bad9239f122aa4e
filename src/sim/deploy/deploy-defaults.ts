// A service's `deploy:` block as the defaults of `mesh canary` / `mesh rollout`: a flag given
// on the command line wins, then the block, then the flags' own defaults (parseDeployPlan),
// so there is one place that says what a canary does when nothing is said.
import {formatDuration} from '../config/duration.js'
import type {DeployConfig, ServiceConfig} from '../config/types.js'
import {type DeployFlags, parseDeployPlan} from './deploy-flags.js'
import type {DeployPlan} from './deploy-types.js'

type Shifting = Exclude<DeployPlan['strategy'], 'restart'>

/** The block as the flags would say it (only the keys it sets, for `strategy`'s deploy). */
function asFlags(d: DeployConfig, strategy: Shifting): Partial<DeployFlags> {
  const out: Partial<DeployFlags> = {}
  const ms = (v: number | undefined) => (v === undefined ? undefined : formatDuration(v))
  if (strategy !== 'rolling') {
    out.check = d.check
  }
  out.progressDeadline = ms(d.progressDeadlineMs)
  // A block written for another strategy lends only what every deploy shares.
  if (d.strategy === strategy) {
    Object.assign(out, {
      steps: d.steps?.join(','),
      interval: ms(d.intervalMs),
      maxErrorRate: d.maxErrorRate === undefined ? undefined : String(d.maxErrorRate),
      maxP99: ms(d.maxP99Ms),
      compareToPrimary: d.compareToPrimary,
      failureThreshold: d.failureThreshold,
      minRequests: d.minRequests,
      match: d.match ? `${d.match.name}=${d.match.value}` : undefined,
      mirror: d.mirror,
      smoke: d.smoke,
      keep: ms(d.keepMs),
      maxSurge: d.maxSurge,
      maxUnavailable: d.maxUnavailable,
    } satisfies Partial<DeployFlags>)
  }
  return out
}

/** `flags` over the block's values: each flag given (not undefined) wins. */
export function withDeployDefaults<F extends DeployFlags>(flags: F, deploy: DeployConfig | undefined, strategy: Shifting): F {
  if (!deploy) return flags
  const merged: Record<string, unknown> = {...(flags as Record<string, unknown>)}
  for (const [key, value] of Object.entries(asFlags(deploy, strategy))) {
    if (value !== undefined && merged[key] === undefined) merged[key] = value
  }
  return merged as unknown as F
}

/** `mesh rollout` without --strategy: the block's, when it is one rollout makes; else rolling. */
export function rolloutStrategy(flag: string | undefined, deploy: DeployConfig | undefined): 'rolling' | 'blue-green' {
  if (flag === 'rolling' || flag === 'blue-green') return flag
  return deploy?.strategy === 'blue-green' ? 'blue-green' : 'rolling'
}

/** The deploy a service's `deploy:` block describes, every default applied (what `mesh export --rollouts` writes). */
export function declaredDeployPlan(service: ServiceConfig): DeployPlan | undefined {
  const d = service.deploy
  if (!d) return undefined
  return parseDeployPlan(service.name, d.strategy, withDeployDefaults({to: ''}, d, d.strategy))
}
