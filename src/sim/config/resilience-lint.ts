// The resilience lint `mesh validate` prints: policy combinations that are valid
// YAML but fail under stress — retries the overall timeout cuts short, retries
// that multiply along a call path into a storm, retries on calls that cannot be
// replayed, outlier detection allowed to eject every instance. Each warning shows
// the numbers so the fix is obvious. Pure: config in, warnings out.
import {formatDuration} from './duration.js'
import type {MeshConfig, ServiceConfig} from './types.js'
import {GRPC_RETRY_NAMES, isIdempotent} from './retry-semantics.js'
import {callGraph} from './call-graph.js'
import {lintJwt} from './jwt-lint.js'

export interface ResilienceWarning {
  service: string
  /** Dotted path into mesh.yaml, e.g. services.payments.policy.retries */
  path: string
  message: string
}

/** Worst-case calls to one service per user request above which we warn. */
export const AMPLIFICATION_LIMIT = 10

export function lintResilience(config: MeshConfig): ResilienceWarning[] {
  const warnings: ResilienceWarning[] = []
  for (const s of config.services) warnings.push(...timeoutWarnings(s))
  warnings.push(...amplificationWarnings(config))
  warnings.push(...idempotencyWarnings(config))
  for (const s of config.services) warnings.push(...grpcRetryWarnings(s))
  for (const s of config.services) warnings.push(...outlierWarnings(s))
  warnings.push(...lintJwt(config))
  return warnings
}

/** Tries per call to `s`: the first plus its retries. */
function tries(s: ServiceConfig | undefined): number {
  return 1 + (s?.policy.retries?.attempts ?? 0)
}

function timeoutWarnings(s: ServiceConfig): ResilienceWarning[] {
  const retries = s.policy.retries
  const timeoutMs = s.policy.timeoutMs
  if (!retries?.perTryTimeoutMs || timeoutMs === undefined || retries.attempts === 0) return []
  const n = tries(s)
  const worst = retries.perTryTimeoutMs * n
  if (worst <= timeoutMs) return []
  const fit = Math.floor(timeoutMs / retries.perTryTimeoutMs)
  return [
    {
      service: s.name,
      path: `services.${s.name}.policy.retries`,
      message:
        `perTryTimeout ${formatDuration(retries.perTryTimeoutMs)} × ${n} tries (1 + ${retries.attempts} retries) = ${formatDuration(worst)} ` +
        `exceeds timeout ${formatDuration(timeoutMs)}: ` +
        // perTryTimeout above the timeout: the timeout always fires first, and no try is ever retried on a per-try timeout.
        (fit === 0
          ? `even the first try's perTryTimeout is longer than the timeout, so the timeout always fires first and perTryTimeout never applies. `
          : `only ${fit} full ${fit === 1 ? 'try fits' : 'tries fit'}, so the last retries are cut short. `) +
        `Raise timeout to at least ${formatDuration(worst)} or lower attempts or perTryTimeout.`,
    },
  ]
}

function amplificationWarnings(config: MeshConfig): ResilienceWarning[] {
  const byName = new Map(config.services.map((s) => [s.name, s]))
  const graph = callGraph(config)
  let roots = config.ingress?.routes.map((r) => r.service) ?? []
  if (roots.length === 0) {
    // No ingress: every service nobody calls is where user requests enter.
    const called = new Set([...graph.values()].flat())
    roots = config.services.map((s) => s.name).filter((n) => !called.has(n))
  }
  // Worst product of tries along any path from an entry point. The checker rejects call
  // cycles, so the graph is a DAG: one pass in topological order finds every service's worst
  // product (each factor ≥ 1) in time linear in the mesh. Topological order comes from a
  // depth-first search without recursion (a 5,000-deep call chain would overflow the stack);
  // an edge back to a service still on the search path (a cycle) is left out, so it ends the path.
  const order: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const back = new Set<string>()
  for (const root of new Set(roots)) {
    if (!byName.has(root) || state.has(root)) continue
    const stack: Array<{name: string; next: number}> = [{name: root, next: 0}]
    state.set(root, 'open')
    while (stack.length > 0) {
      const top = stack[stack.length - 1]
      const callees = graph.get(top.name) ?? []
      if (top.next >= callees.length) {
        stack.pop()
        state.set(top.name, 'done')
        order.push(top.name)
        continue
      }
      const callee = callees[top.next++]
      if (!byName.has(callee)) continue
      if (state.get(callee) === 'open') back.add(`${top.name}\u0000${callee}`)
      else if (!state.has(callee)) {
        state.set(callee, 'open')
        stack.push({name: callee, next: 0})
      }
    }
  }
  order.reverse()
  interface Worst {
    calls: number
    /** The service before this one on the worst path; undefined at an entry point. */
    from?: string
    hops: number
    /** Where the worst path enters. */
    root: string
  }
  const best = new Map<string, Worst>()
  for (const root of roots) if (byName.has(root) && !best.has(root)) best.set(root, {calls: tries(byName.get(root)), hops: 1, root})
  for (const name of order) {
    const here = best.get(name)
    if (!here) continue
    for (const callee of graph.get(name) ?? []) {
      if (!byName.has(callee) || back.has(`${name}\u0000${callee}`)) continue
      const calls = here.calls * tries(byName.get(callee))
      const prev = best.get(callee)
      if (prev === undefined || calls > prev.calls) best.set(callee, {calls, from: name, hops: here.hops + 1, root: here.root})
    }
  }

  const warnings: ResilienceWarning[] = []
  for (const s of config.services) {
    const worst = best.get(s.name)
    if (worst === undefined || worst.calls <= AMPLIFICATION_LIMIT) continue
    // A path of thousands of hops is shown by its ends, so the warnings stay linear in the mesh.
    const path: string[] = []
    let at: string | undefined = s.name
    while (at !== undefined && path.length < SHOWN_HOPS) {
      path.unshift(at)
      at = best.get(at)!.from
    }
    const hidden = worst.hops - path.length - 1
    const elided = at === undefined ? '' : `${worst.root} → ${hidden > 0 ? `… (${hidden} more) → ` : ''}`
    const factors = path.map((n) => tries(byName.get(n))).join(' × ')
    const withRetries = path.filter((n) => (byName.get(n)?.policy.retries?.attempts ?? 0) > 0)
    warnings.push({
      service: s.name,
      path: s.policy.retries ? `services.${s.name}.policy.retries` : `services.${withRetries.at(-1) ?? s.name}.policy.retries`,
      message:
        `${elided}${path.join(' → ')}: up to ${worst.calls} calls to ${s.name} per user request (${elided ? '… × ' : ''}${factors} tries) when it fails. ` +
        `Retry at one layer only (usually the edge), or lower attempts along this path; retry budgets cap it only after the fact.`,
    })
  }
  return warnings
}

/** The hops of a worst path shown in full; a longer one shows its entry point, then these last ones. */
const SHOWN_HOPS = 12

/** Every gRPC call is a POST: only `on` values that name gRPC statuses replay it. */
function grpcRetryWarnings(s: ServiceConfig): ResilienceWarning[] {
  const retries = s.policy.retries
  if (s.protocol !== 'grpc' || !retries || retries.attempts === 0) return []
  if (retries.on.some((rule) => typeof rule === 'string' && (GRPC_RETRY_NAMES as string[]).includes(rule))) return []
  return [
    {
      service: s.name,
      path: `services.${s.name}.policy.retries.on`,
      message:
        `${s.name} is protocol: grpc, and every gRPC call is a POST, which on: [${retries.on.join(', ')}] never replays (only a refused connection is retried). ` +
        `Name the gRPC statuses to retry, as Istio does: on: [unavailable] (or cancelled, deadline-exceeded, internal, resource-exhausted).`,
    },
  ]
}

function idempotencyWarnings(config: MeshConfig): ResilienceWarning[] {
  const byName = new Map(config.services.map((s) => [s.name, s]))
  const warnings: ResilienceWarning[] = []
  const seen = new Set<string>()
  for (const caller of config.services) {
    for (const v of caller.versions) {
      if (v.workload.kind !== 'simulate') continue
      for (const call of v.workload.simulate.calls) {
        const target = byName.get(call.service)
        const method = call.method.toUpperCase()
        if (!target?.policy.retries || target.policy.retries.attempts === 0 || isIdempotent(method)) continue
        const id = `${caller.name}\u0000${target.name}\u0000${method}\u0000${call.path}`
        if (seen.has(id)) continue
        seen.add(id)
        warnings.push({
          service: target.name,
          path: `services.${target.name}.policy.retries`,
          message:
            `retries (attempts ${target.policy.retries.attempts}) are set for ${target.name}, but ${caller.name} calls it with ${method} ${call.path}; ` +
            `${method} is not idempotent, so the mesh will not retry those calls (a replayed ${method} could apply twice). ` +
            `Make the call idempotent (e.g. PUT with a request id) or expect no retries for it.`,
        })
      }
    }
  }
  return warnings
}

function outlierWarnings(s: ServiceConfig): ResilienceWarning[] {
  const od = s.policy.outlierDetection
  if (!od || (od.consecutive5xxErrors === 0 && od.consecutiveGatewayErrors === 0)) return []
  const instances = s.versions.reduce((n, v) => n + v.replicas, 0)
  // One ejection is always allowed (see OutlierDetector), whatever the percentage.
  const ejectable = Math.max(1, Math.floor((od.maxEjectionPercent * instances) / 100))
  if (ejectable < instances) return []
  const why =
    instances === 1
      ? `${s.name} has 1 instance and one ejection is always allowed, so one bad run ejects all of it`
      : `maxEjectionPercent ${od.maxEjectionPercent} lets outlier detection eject all ${instances} instances of ${s.name}`
  return [
    {
      service: s.name,
      path: `services.${s.name}.policy.outlierDetection`,
      message:
        `${why} for at least ${formatDuration(od.baseEjectionTimeMs)}; panic mode then sends traffic to ejected instances anyway. ` +
        (instances === 1 ? `Run 2 or more replicas, or drop outlierDetection for ${s.name}.` : `Lower maxEjectionPercent below 100.`),
    },
  ]
}
