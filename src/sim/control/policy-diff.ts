// What `mesh apply` would change: policy blocks, weights, telemetry and fault headers change
// live; services and versions are added and removed, a version's replicas scaled and its
// command, cwd, env or simulation restarted instance by instance; ports, dependsOn, health
// checks and every field not named here need the mesh restarted (or a deploy). Nothing
// that differs goes unreported: restartOnlyChanges names whatever no live change covers.
import type {IngressConfig, MeshConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import {type DeployRecord, shiftsTraffic} from '../deploy/deploy-types.js'
import {describeRoute} from '../config/ingress-routes.js'
import {DEFAULT_SPANS_PER_SECOND} from '../telemetry/trace-sampler.js'

export const RESTART = 'restart the mesh (`mesh down && mesh up`) for that'
export const RESTART_OR_DEPLOY = 'restart the mesh (`mesh down && mesh up`) or use a deploy for that'

/** A version mesh.yaml now asks to run differently: new, gone, scaled, or its processes replaced. */
export interface InstanceChange {
  service: string
  version: string
  /** New in mesh.yaml: added to the running config (started if it has traffic). */
  added?: boolean
  /** Gone from mesh.yaml: drained and stopped once the new weights have moved traffic off it. */
  removed?: boolean
  replicas?: {from: number; to: number}
  /** What of the process changed (command, cwd, env, simulate): its instances are replaced. */
  respawn?: string[]
  /** `scaling:` changed: the autoscaler follows the new one (or lets the version go to `replicas`). */
  scaling?: boolean
  /** The version as mesh.yaml has it now. */
  next: VersionConfig
}

/**
 * `current` is the running config (policies as applied); `declared` what mesh.yaml said
 * when the mesh started. Versions, replicas and commands are compared with `declared`:
 * a deploy changes the running config's versions, and that is not the user editing
 * mesh.yaml.
 */
export function diffPolicies(
  current: MeshConfig,
  next: MeshConfig,
  declared: ServiceConfig[] = current.services,
): {changes: string[]; notApplied: string[]; instances: InstanceChange[]; added: ServiceConfig[]; removed: string[]} {
  const changes: string[] = []
  const notApplied: string[] = []
  const instances: InstanceChange[] = []
  const now = new Map(current.services.map((s) => [s.name, s]))
  const started = new Map(declared.map((s) => [s.name, s]))
  const later = new Map(next.services.map((s) => [s.name, s]))
  const added = next.services.filter((s) => !now.has(s.name))
  const removed = [...now.keys()].filter((name) => !later.has(name))
  for (const [name, a] of now) {
    const b = later.get(name)
    if (!b) continue
    const pa = a.policy as unknown as Record<string, unknown>
    const pb = b.policy as unknown as Record<string, unknown>
    for (const key of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
      const before = JSON.stringify(pa[key])
      const after = JSON.stringify(pb[key])
      if (before !== after) changes.push(`${name}: policy.${key} ${before ?? 'unset'} → ${after ?? 'unset'}`)
    }
    const reason = instanceChanges(started.get(name) ?? a, b, instances)
    if (reason) notApplied.push(`${name}: ${reason}: ${RESTART_OR_DEPLOY}`)
  }
  notApplied.push(...restartOnlyChanges(current, next))
  return {changes, notApplied, instances, added, removed}
}

/**
 * What diffPolicies, ingressChange and liveSettingsChanges compare (each field there is
 * applied live or reported); whatever else differs is reported by restartOnlyChanges, so a
 * field added to the config later is never silently ignored by apply.
 */
const COMPARED_ELSEWHERE = {
  mesh: ['file', 'dir', 'ingress', 'telemetry', 'services', 'functions'],
  faults: ['allowHeaders'],
  telemetry: ['accessLog', 'spansPerSecond', 'otlpEndpoint'] satisfies Array<keyof LiveSettings>,
  service: ['name', 'policy', 'versions', 'dependsOn', 'dependsOnConditions', 'optionalDependsOn', 'restart', 'maxRestarts', 'watch', 'protocol', 'health'],
}

/** `services.api.stopGracePeriod changed: restart …` for each field apply cannot change live. */
export function restartOnlyChanges(current: MeshConfig, next: MeshConfig): string[] {
  const out: string[] = []
  const compare = (path: string, a: object | undefined, b: object | undefined, skip: string[]) => {
    const x = (a ?? {}) as Record<string, unknown>
    const y = (b ?? {}) as Record<string, unknown>
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (skip.includes(key) || same(x[key], y[key])) continue
      // As mesh.yaml spells it: stopGracePeriodMs is written stopGracePeriod.
      out.push(`${path}${key.replace(/Ms$/, '')} changed: ${RESTART}`)
    }
  }
  compare('', current, next, [...COMPARED_ELSEWHERE.mesh, 'faults'])
  compare('faults.', current.faults, next.faults, COMPARED_ELSEWHERE.faults)
  compare('telemetry.', current.telemetry, next.telemetry, COMPARED_ELSEWHERE.telemetry)
  for (const a of current.services) {
    const b = next.services.find((s) => s.name === a.name)
    if (b) compare(`services.${a.name}.`, a, b, COMPARED_ELSEWHERE.service)
  }
  return out
}

/** What apply changes in the running mesh without restarting anything beyond policies and instances. */
export interface LiveSettings {
  accessLog: boolean
  spansPerSecond: number
  otlpEndpoint?: string
  faultHeaders: boolean
}

export function liveSettings(config: Pick<MeshConfig, 'telemetry' | 'faults'>): LiveSettings {
  return {
    accessLog: config.telemetry?.accessLog === true,
    spansPerSecond: config.telemetry?.spansPerSecond ?? DEFAULT_SPANS_PER_SECOND,
    otlpEndpoint: config.telemetry?.otlpEndpoint,
    faultHeaders: config.faults.allowHeaders,
  }
}

/** One line per setting mesh.yaml now has otherwise than the running mesh. */
export function liveSettingsChanges(live: LiveSettings, next: LiveSettings): string[] {
  const out: string[] = []
  if (live.accessLog !== next.accessLog) out.push(`telemetry: access logs ${next.accessLog ? 'on' : 'off'}`)
  if (live.spansPerSecond !== next.spansPerSecond) out.push(`telemetry: trace sampling ${live.spansPerSecond} → ${next.spansPerSecond} spans/s`)
  if (live.otlpEndpoint !== next.otlpEndpoint) {
    out.push(
      !next.otlpEndpoint
        ? `telemetry: OTLP push to ${live.otlpEndpoint} stopped`
        : !live.otlpEndpoint
          ? `telemetry: OTLP push to ${next.otlpEndpoint} started`
          : `telemetry: OTLP push ${live.otlpEndpoint} → ${next.otlpEndpoint}`,
    )
  }
  if (live.faultHeaders !== next.faultHeaders) out.push(`faults: x-mesh-fault-* request headers ${next.faultHeaders ? 'honoured' : 'ignored'} (allowHeaders: ${next.faultHeaders})`)
  return out
}

/**
 * `functions:` in mesh.yaml against the running mesh's: applied live, as a Lambda account's
 * limit is changed (apply puts the new one in the running config, where the activator's
 * account gate reads it).
 */
export function functionsChange(was: MeshConfig['functions'], now: MeshConfig['functions']): string | undefined {
  if (same(was, now)) return undefined
  const limit = (f: MeshConfig['functions']) => (f ? String(f.accountConcurrency) : 'none')
  return limit(was) !== limit(now) ? `functions: accountConcurrency ${limit(was)} → ${limit(now)}` : `functions: ${JSON.stringify(was)} → ${JSON.stringify(now)}`
}

/** One thing `mesh apply` did, or could not do live (then `message` says why). */
export interface Applied {
  applied: boolean
  message: string
}

/**
 * The ingress in mesh.yaml against the running one: new routes apply live (the checker has
 * made sure each names a service); a new port, or an ingress added or removed, needs the
 * mesh restarted.
 */
export function ingressChange(was: IngressConfig | undefined, now: IngressConfig | undefined): Applied | undefined {
  if (!was && !now) return undefined
  if (!was || !now) return {applied: false, message: `ingress: ${now ? 'added' : 'removed'}: ${RESTART}`}
  if (was.port !== now.port) return {applied: false, message: `ingress: port ${was.port} → ${now.port}: ${RESTART}`}
  const show = (c: IngressConfig) => c.routes.map((r) => describeRoute(r)).join(', ') || 'none'
  if (show(was) !== show(now)) return {applied: true, message: `ingress: routes ${show(was)} ⇒ ${show(now)}`}
  // Something the routes' description leaves out: not applied, and said so.
  return same(was, now) ? undefined : {applied: false, message: `ingress changed: ${RESTART}`}
}

/** `replicas 2 → 3, command and env changed`: what apply will do to a version. */
export function describeInstanceChange(c: InstanceChange): string {
  if (c.added) return 'added'
  if (c.removed) return 'removed'
  const parts: string[] = []
  if (c.replicas) parts.push(`replicas ${c.replicas.from} → ${c.replicas.to}`)
  if (c.respawn) parts.push(`${c.respawn.join(', ')} changed`)
  if (c.scaling) parts.push(c.next.scaling ? 'scaling changed' : 'no longer autoscaled')
  return parts.join(', ')
}

/** Config values (plain data, keys in parse order) compared as they would be written. */
const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y)

/** Adds the versions apply can scale or restart to `out`; or says why the service cannot be changed live. */
function instanceChanges(was: ServiceConfig, now: ServiceConfig, out: InstanceChange[]): string | undefined {
  if (!same(was.dependsOn, now.dependsOn) || !same(was.dependsOnConditions, now.dependsOnConditions) || !same(was.optionalDependsOn, now.optionalDependsOn)) return 'dependsOn changed'
  if (was.restart !== now.restart || was.maxRestarts !== now.maxRestarts) return 'restart changed'
  if (!same(was.watch, now.watch)) return 'watch changed'
  if (was.protocol !== now.protocol) return 'protocol changed'
  if (!same(was.health, now.health)) return 'health checks changed'
  const found: InstanceChange[] = []
  for (const gone of was.versions) {
    if (!now.versions.some((v) => v.name === gone.name)) found.push({service: now.name, version: gone.name, removed: true, next: gone})
  }
  for (const next of now.versions) {
    const before = was.versions.find((v) => v.name === next.name)
    if (!before) {
      found.push({service: now.name, version: next.name, added: true, next})
      continue
    }
    const change = versionChange(now.name, before, next)
    if (typeof change === 'string') return change
    if (change) found.push(change)
  }
  out.push(...found)
  return undefined
}

/** How `next` differs from `before` as apply sees it: nothing, a scale and/or a respawn, or why it cannot be applied live. */
export function versionChange(service: string, before: VersionConfig, next: VersionConfig): InstanceChange | string | undefined {
  if (same(before, next)) return undefined
  if (before.port !== next.port) return `the port of ${next.name} changed`
  const w0 = before.workload
  const w1 = next.workload
  if (w0.kind !== w1.kind) return `${next.name} changed from ${w0.kind} to ${w1.kind}`
  if (w0.kind === 'address' || w1.kind === 'address') return `the address of ${next.name} changed`
  const respawn: string[] = []
  if (w0.kind === 'command' && w1.kind === 'command') {
    if (w0.command !== w1.command) respawn.push('command')
    if (w0.cwd !== w1.cwd) respawn.push('cwd')
  } else if (!same(w0, w1)) respawn.push('simulate')
  if (!same(before.env, next.env)) respawn.push('env')
  const scaling = !same(before.scaling, next.scaling)
  // An autoscaled version's count is the autoscaler's (a new initialScale rescales nothing); one that stops being autoscaled goes to its replicas.
  const replicas = !next.scaling && (before.replicas !== next.replicas || !!before.scaling)
  if (!replicas && !scaling && respawn.length === 0) return `${next.name} changed`
  return {
    service,
    version: next.name,
    replicas: replicas ? {from: before.replicas, to: next.replicas} : undefined,
    respawn: respawn.length ? respawn : undefined,
    scaling: scaling || undefined,
    next,
  }
}

/** What `mesh apply` did, and what the user should know about it. */
export interface ApplyResult {
  changes: string[]
  notApplied: string[]
  /** Applied, but probably not what was meant: traffic a deploy had moved goes back to mesh.yaml's split. */
  warnings: string[]
}

/**
 * The deploy whose traffic split is live for a service: one still running, or the last
 * promoted one, unless an apply has set mesh.yaml's weights since (`appliedOver`). A
 * rolled-back deploy restored the split from before it, so the search goes on past it (and
 * past restarts, which never move it).
 */
export function deployBehindWeights(history: DeployRecord[], appliedOver: ReadonlySet<string>): DeployRecord | undefined {
  for (const r of [...history].reverse()) {
    if (!shiftsTraffic(r.plan)) continue
    if (r.outcome === 'running') return r
    if (r.outcome === 'promoted') return appliedOver.has(r.id) ? undefined : r
  }
  return undefined
}

export interface LiveWeights {
  service: string
  /** The split the data plane routes by now. */
  live: Map<string, number>
  /** mesh.yaml's split as the mesh last loaded it. */
  before: Map<string, number>
  /** mesh.yaml's split now: what apply sets. */
  after: Map<string, number>
  /** From deployBehindWeights. */
  deploy?: DeployRecord
  /** Versions mesh.yaml declares for the service now. */
  declared: string[]
}

/**
 * Apply sets mesh.yaml's weights whatever the live split is. When the file's weights did
 * not change, diffPolicies sees nothing, yet traffic moves: that is reported as a change.
 * When a deploy made the live split, the move is probably a surprise (mesh.yaml was not
 * updated after the deploy), so it also gets a warning that says how to keep the deploy.
 */
export function liveWeightsChange(w: LiveWeights): {change?: string; warning?: string} {
  if (sameWeights(w.live, w.after)) return {}
  const change = sameWeights(w.before, w.after) ? `${w.service}: weights ${formatWeights(w.live)} → ${formatWeights(w.after)}, as mesh.yaml says` : undefined
  const d = w.deploy
  if (!d) return {change}
  const what = `deploy ${d.id} (${d.plan.strategy} to ${d.plan.to})`
  if (d.outcome === 'running') {
    return {
      change,
      warning:
        `${w.service}: ${what} is still running, and apply set its weights to mesh.yaml's ${formatWeights(w.after)} underneath it. ` +
        `Let the deploy end and then update mesh.yaml, or stop it with \`mesh rollback ${w.service}\`.`,
    }
  }
  const declare = w.declared.includes(d.plan.to) ? '' : ` and declare ${d.plan.to} under services.${w.service}.versions (the deploy made it from flags)`
  return {
    change,
    warning:
      `${w.service}: ${what} was promoted, but mesh.yaml says ${formatWeights(w.after)}, so apply moved traffic from ${formatWeights(w.live)} back to ${formatWeights(w.after)}. ` +
      `To keep ${d.plan.to}, set services.${w.service}.policy.weights to ${yamlWeights(w.live)} in mesh.yaml${declare}, then run \`mesh apply\` again.`,
  }
}

/** Equal up to rounding; a version left out has weight 0. */
export function sameWeights(a: Map<string, number>, b: Map<string, number>): boolean {
  for (const v of new Set([...a.keys(), ...b.keys()])) if (Math.abs((a.get(v) ?? 0) - (b.get(v) ?? 0)) > 0.01) return false
  return true
}

/** `v1 90%, v2 10%`, as deploy steps show weights; versions without traffic are left out. */
export function formatWeights(w: Map<string, number>): string {
  const shown = [...w].filter(([, x]) => x > 0).map(([v, x]) => `${v} ${round(x)}%`)
  return shown.length ? shown.join(', ') : 'no traffic'
}

/** `{v2: 100}`: ready to paste into mesh.yaml. */
function yamlWeights(w: Map<string, number>): string {
  return `{${[...w].filter(([, x]) => x > 0).map(([v, x]) => `${v}: ${round(x)}`).join(', ')}}`
}

const round = (x: number) => Math.round(x * 100) / 100
