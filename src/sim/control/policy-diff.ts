// What `mesh apply` would change: policy blocks and weights can change live; new
// services, versions, replicas, commands or ports need a restart (or a deploy).
import type {MeshConfig, ServiceConfig} from '../config/types.js'
import type {DeployRecord} from '../deploy/deploy-types.js'

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
): {changes: string[]; notApplied: string[]} {
  const changes: string[] = []
  const notApplied: string[] = []
  const now = new Map(current.services.map((s) => [s.name, s]))
  const started = new Map(declared.map((s) => [s.name, s]))
  const later = new Map(next.services.map((s) => [s.name, s]))
  for (const name of later.keys()) if (!now.has(name)) notApplied.push(`service ${name} is new: restart the mesh to start it`)
  for (const name of now.keys()) if (!later.has(name)) notApplied.push(`service ${name} was removed: restart the mesh to stop it`)
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
    if (shape(started.get(name) ?? a) !== shape(b)) notApplied.push(`${name}: versions, replicas, commands or ports changed: restart the mesh (or use a deploy) for that`)
  }
  return {changes, notApplied}
}

function shape(s: ServiceConfig): string {
  return JSON.stringify({versions: s.versions, dependsOn: s.dependsOn, health: s.health})
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
    // A restart replaces processes and leaves the weights as they were.
    if (r.plan.strategy === 'restart') continue
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
