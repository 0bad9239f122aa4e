// The endpoints of one destination service as a sidecar sees them, kept current by
// the registry's watch stream. A pick first chooses a version by its traffic weight
// (smooth weighted round-robin, so 90/10 is exact over every 10 picks and needs no
// dice), then round-robins within that version. The policy stack (load balancers,
// outlier ejection) replaces the second step in the traffic-policy work.
import type {Endpoint, Registry, RegistryUpdate} from '../control/registry.js'

export class EndpointSet {
  private list: Endpoint[] = []
  private readonly byVersion = new Map<string, {endpoints: Endpoint[]; next: number; current: number}>()
  private readonly unwatch: () => void

  /** `weights`: version → percent; versions missing from it get no traffic. */
  constructor(
    readonly service: string,
    registry: Registry,
    private weights: Map<string, number>,
  ) {
    this.unwatch = registry.watch(service, (u) => this.apply(u))
  }

  setWeights(weights: Map<string, number>): void {
    this.weights = weights
  }

  get size(): number {
    return this.list.length
  }

  all(): readonly Endpoint[] {
    return this.list
  }

  pick(): Endpoint | undefined {
    // Smooth weighted round-robin (nginx): every version gains its weight, the
    // richest is chosen and pays the total back. Versions without endpoints sit out.
    let total = 0
    let best: {endpoints: Endpoint[]; next: number; current: number} | undefined
    for (const [version, group] of this.byVersion) {
      const weight = this.weights.get(version) ?? 0
      if (weight <= 0 || group.endpoints.length === 0) continue
      group.current += weight
      total += weight
      if (!best || group.current > best.current) best = group
    }
    if (!best) return undefined
    best.current -= total
    const e = best.endpoints[best.next % best.endpoints.length]
    best.next = (best.next + 1) % best.endpoints.length
    return e
  }

  close(): void {
    this.unwatch()
  }

  private apply(update: RegistryUpdate): void {
    switch (update.kind) {
      case 'reset':
        this.list = [...update.endpoints]
        break
      case 'add':
        this.list = [...this.list.filter((e) => e.instance !== update.endpoint.instance), update.endpoint]
        break
      case 'remove':
        this.list = this.list.filter((e) => e.instance !== update.instance)
        break
    }
    for (const group of this.byVersion.values()) group.endpoints = []
    for (const e of this.list) {
      let group = this.byVersion.get(e.version)
      if (!group) this.byVersion.set(e.version, (group = {endpoints: [], next: 0, current: 0}))
      group.endpoints.push(e)
    }
  }
}
