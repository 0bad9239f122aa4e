// Whether a mesh can carry a load at all, before (or beside) running it: the work each
// service is offered, from the ingress rate and the call graph of the models, against
// the slots it has (issue #24, item 8). A service offered more than its slots can do has
// no steady state: its queue grows for as long as the run lasts, so the latencies a run
// reports for it measure the run's length. Said up front, with the utilisation of each.
//
//   λ(entry) = ingress rps      λ(callee) += λ(caller) · w(version) · p(call)     (fixed point: cycles converge or diverge)
//   T(version) = mean latency + calls (sequential: Σ p·R(callee); parallel: max p·R(callee))
//   R(service) = Σ w·T          ρ(version) = λ · w · T / (replicas · concurrency)
//
// Every figure is a lower bound on the real work: no retries, no time waiting in a
// callee's queue, a parallel fan-out as long as its longest branch's mean. So a service
// this calls unstable is unstable; one it calls stable may still be pushed over by retries.
import {matchRoute} from '../config/ingress-routes.js'
import type {MeshConfig, ServiceConfig, VersionConfig} from '../config/types.js'
import {versionWeights} from '../config/versions.js'
import {latencyModel} from '../model/latency-model.js'
import {modelOf} from './simulation.js'

export interface ServiceLoad {
  service: string
  /** Requests per second offered to the service: the ingress rate times its expected visits per ingress request. */
  rps: number
  /** Mean time an attempt holds a slot, ms: its own latency and its downstream calls (a lower bound). */
  meanSlotMs: number
  /** Σ instances × concurrency over its versions; 0 when a version's concurrency is unbounded. */
  slots: number
  /**
   * Offered work ÷ slots of its busiest version (≥ 1: unstable). With unbounded concurrency
   * nothing queues: mean requests in flight per instance, never unstable.
   */
  utilisation: number
  /** Whether every version has a concurrency limit (only then can it be unstable). */
  bounded: boolean
}

interface Part {
  version: VersionConfig
  /** Share of the service's traffic, 0..1. */
  share: number
  meanLatencyMs: number
  calls: Array<{service: string; probability: number}>
  parallel: boolean
  concurrency: number
  /** The most instances it can have: its replicas, or its scaling's maxScale. */
  instances: number
}

/** The service an ingress request on `path` reaches: its route's, or (no ingress) the first service, as `mesh sim` sends it. */
export function entryService(config: MeshConfig, path = '/'): string | undefined {
  const routes = config.ingress?.routes ?? []
  return routes.length > 0 ? matchRoute(routes, path)?.service : config.services[0]?.name
}

/** The load `rps` ingress requests per second on `path` put on each service, in config order. */
export function offeredLoads(config: MeshConfig, rps: number, path = '/'): ServiceLoad[] {
  const parts = new Map(config.services.map((s) => [s.name, partsOf(s)]))
  const rate = arrivalRates(config, parts, rps, entryService(config, path))
  const response = responseTimes(config, parts)
  return config.services.map((s) => {
    const lambda = rate.get(s.name) ?? 0
    const own = parts.get(s.name)!
    const bounded = own.length > 0 && own.every((p) => p.concurrency > 0)
    let utilisation = 0
    let meanSlotMs = 0
    let slots = 0
    let instances = 0
    for (const p of own) {
      const slotMs = slotTime(p, response)
      meanSlotMs += p.share * slotMs
      instances += p.instances
      slots += p.instances * p.concurrency
      if (bounded) utilisation = Math.max(utilisation, (lambda * p.share * slotMs) / 1000 / (p.instances * p.concurrency))
    }
    if (!bounded) utilisation = instances > 0 ? (lambda * meanSlotMs) / 1000 / instances : 0
    return {service: s.name, rps: lambda, meanSlotMs, slots: bounded ? slots : 0, utilisation, bounded}
  })
}

/** The services whose arrivals exceed capacity (ρ ≥ 1), for SimResult.unstable, utilisation rounded to 3 places. */
export function unstableServices(loads: readonly ServiceLoad[]): Array<{service: string; utilisation: number}> {
  return loads.filter((l) => l.bounded && l.utilisation >= 1).map((l) => ({service: l.service, utilisation: Math.round(l.utilisation * 1000) / 1000}))
}

/** What to say of an unstable mesh: each service with its utilisation, and why its latencies mean nothing. */
export function describeUnstable(unstable: ReadonlyArray<{service: string; utilisation: number}>): string | undefined {
  if (unstable.length === 0) return undefined
  const each = unstable.map((u) => `${u.service} (utilisation ${Math.round(u.utilisation * 100)}%)`).join(', ')
  const one = unstable.length === 1
  return (
    `unstable: arrivals exceed capacity at ${each}. ${one ? 'Its queue grows' : 'Their queues grow'} for as long as the run lasts, ` +
    `so ${one ? 'its' : 'their'} latencies reflect the run's length, not a steady state: lower the load, or raise replicas or concurrency`
  )
}

function partsOf(service: ServiceConfig): Part[] {
  const weights = versionWeights(service)
  let total = 0
  for (const w of weights.values()) total += w
  const parts: Part[] = []
  for (const version of service.versions) {
    const share = total > 0 ? (weights.get(version.name) ?? 0) / total : 0
    const model = modelOf(service, version)
    if (share === 0 || !model) continue
    parts.push({
      version,
      share,
      meanLatencyMs: latencyModel(model.latency).meanMs,
      calls: model.calls.map((c) => ({service: c.service, probability: c.probability})),
      parallel: model.callMode === 'parallel',
      concurrency: model.concurrency,
      instances: version.scaling ? Math.max(version.replicas, version.scaling.maxScale) : version.replicas,
    })
  }
  return parts
}

const MAX_ROUNDS = 10_000

/** Expected arrivals per second at each service: λ = e + Pᵀλ, solved by iteration (a call cycle that grows has no fixed point: Infinity). */
function arrivalRates(config: MeshConfig, parts: Map<string, Part[]>, rps: number, entry: string | undefined): Map<string, number> {
  const names = config.services.map((s) => s.name)
  let rate = new Map(names.map((n) => [n, 0]))
  if (!entry || !rate.has(entry)) return rate
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = new Map(names.map((n) => [n, n === entry ? rps : 0]))
    for (const [name, own] of parts) {
      const lambda = rate.get(name)!
      for (const p of own) for (const c of p.calls) if (next.has(c.service)) next.set(c.service, next.get(c.service)! + lambda * p.share * c.probability)
    }
    const settled = names.every((n) => Math.abs(next.get(n)! - rate.get(n)!) <= 1e-12 * Math.max(1, next.get(n)!))
    rate = next
    if (settled) return rate
  }
  for (const n of names) if (rate.get(n)! > rps) rate.set(n, Infinity)
  return rate
}

/** Mean response time of each service without queueing, ms: R = Σ share · T, by iteration for the same reason. */
function responseTimes(config: MeshConfig, parts: Map<string, Part[]>): Map<string, number> {
  const names = config.services.map((s) => s.name)
  let response = new Map(names.map((n) => [n, 0]))
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = new Map(names.map((n) => [n, parts.get(n)!.reduce((sum, p) => sum + p.share * slotTime(p, response), 0)]))
    const settled = names.every((n) => Math.abs(next.get(n)! - response.get(n)!) <= 1e-9 * Math.max(1, next.get(n)!))
    response = next
    if (settled) return response
  }
  return response
}

function slotTime(p: Part, response: Map<string, number>): number {
  let calls = 0
  for (const c of p.calls) {
    const r = c.probability * (response.get(c.service) ?? 0)
    calls = p.parallel ? Math.max(calls, r) : calls + r
  }
  return p.meanLatencyMs + calls
}
