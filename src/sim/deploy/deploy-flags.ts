// `mesh rollout` / `mesh canary` / `mesh restart` flags → a DeployPlan, with the errors a user needs.
import {missingUnit, parseDuration, parseRatio} from '../config/duration.js'
import {MeshError} from '../errors.js'
import type {DeployPlan, Strategy, VersionOverrides} from './deploy-types.js'

export interface DeployFlags {
  to: string
  strategy?: string
  maxSurge?: number
  maxUnavailable?: number
  smoke?: string
  keep?: string
  steps?: string
  interval?: string
  maxErrorRate?: string
  maxP99?: string
  compareToPrimary?: boolean
  failureThreshold?: number
  match?: string
  mirror?: boolean
  load?: number
  minRequests?: number
  command?: string
  env?: string[]
  set?: string[]
  progressDeadline?: string
  check?: string
}

const bad = (message: string) => new MeshError('MESH_BAD_FLAG', message)

export function parseDeployPlan(service: string, strategy: Exclude<Strategy, 'restart'>, f: DeployFlags): DeployPlan {
  const plan: DeployPlan = {
    service,
    to: f.to,
    strategy,
    overrides: overrides(f),
    progressDeadlineMs: duration('--progress-deadline', f.progressDeadline ?? '60s'),
  }
  if (f.check !== undefined) {
    if (strategy === 'rolling') throw bad('--check runs before traffic moves to the new version: use it with --strategy blue-green or mesh canary')
    if (f.check.trim() === '') throw bad('--check: expected a shell command, like \'npm run e2e\'')
    plan.check = f.check
  }
  if (strategy === 'rolling') {
    const maxSurge = f.maxSurge ?? 1
    const maxUnavailable = f.maxUnavailable ?? 0
    if (maxSurge < 0 || maxUnavailable < 0) throw bad('--max-surge and --max-unavailable must be 0 or more')
    if (maxSurge + maxUnavailable === 0) {
      throw bad('--max-surge and --max-unavailable cannot both be 0 (the rollout could never make progress)')
    }
    plan.rolling = {maxSurge, maxUnavailable}
  } else if (strategy === 'blue-green') {
    let smoke: {method: string; path: string} | undefined
    if (f.smoke) {
      const m = /^([A-Za-z]+)\s+(\/\S*)$/.exec(f.smoke.trim())
      if (!m) throw bad(`--smoke: expected 'METHOD /path' like 'GET /healthz', got "${f.smoke}"`)
      smoke = {method: m[1].toUpperCase(), path: m[2]}
    }
    plan.blueGreen = {smoke, keepMs: duration('--keep', f.keep ?? '60s')}
  } else {
    const steps = (f.steps ?? '5,25,50,100').split(',').map((x) => Number(x.trim()))
    if (steps.some((x) => !Number.isFinite(x) || x <= 0 || x > 100) || steps.some((x, i) => i > 0 && x <= steps[i - 1])) {
      throw bad(`--steps: expected increasing percentages in 1..100 like 5,25,50,100, got "${f.steps}"`)
    }
    if (steps.at(-1) !== 100) steps.push(100)
    let match: {name: string; value: string} | undefined
    if (f.match) {
      const eq = f.match.indexOf('=')
      if (eq <= 0) throw bad(`--match: expected header=value like x-canary=true, got "${f.match}"`)
      match = {name: f.match.slice(0, eq).toLowerCase(), value: f.match.slice(eq + 1)}
    }
    for (const [flag, value, min] of [
      ['--failure-threshold', f.failureThreshold, 1],
      ['--min-requests', f.minRequests, 1],
      ['--load', f.load, 1],
    ] as const) {
      if (value !== undefined && !(Number.isInteger(value) && value >= min)) throw bad(`${flag}: expected an integer >= ${min}, got ${value}`)
    }
    plan.canary = {
      steps,
      intervalMs: duration('--interval', f.interval ?? '10s'),
      maxErrorRate: percent('--max-error-rate', f.maxErrorRate ?? '1%'),
      maxP99Ms: f.maxP99 === undefined ? undefined : duration('--max-p99', f.maxP99),
      compareToPrimary: f.compareToPrimary ?? false,
      failureThreshold: f.failureThreshold ?? 2,
      match,
      mirror: f.mirror || undefined,
      minRequests: f.minRequests ?? 20,
      loadRps: f.load,
    }
  }
  return plan
}

function overrides(f: DeployFlags): VersionOverrides | undefined {
  const out: VersionOverrides = {}
  if (f.command) out.command = f.command
  if (f.env?.length) out.env = pairs('--env', f.env)
  if (f.set?.length) out.set = pairs('--set', f.set)
  return Object.keys(out).length ? out : undefined
}

function pairs(flag: string, items: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of items) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw bad(`${flag}: expected KEY=VALUE, got "${item}"`)
    out[item.slice(0, eq)] = item.slice(eq + 1)
  }
  return out
}

/** `mesh restart SERVICE`: every instance replaced, one at a time; the versions are filled in by the daemon. */
export function parseRestartPlan(service: string, f: {progressDeadline?: string}): DeployPlan {
  return {service, to: '', strategy: 'restart', progressDeadlineMs: duration('--progress-deadline', f.progressDeadline ?? '60s')}
}

function duration(flag: string, v: string): number {
  const ms = parseDuration(v)
  if (ms === undefined) throw bad(`${flag}: expected a duration like 10s or 300ms, got "${v}"${missingUnit(v)}`)
  return ms
}

function percent(flag: string, v: string): number {
  const n = parseRatio(v)
  if (n === undefined) throw bad(`${flag}: expected a percentage like 1% (or a ratio 0..1), got "${v}"`)
  return n
}
