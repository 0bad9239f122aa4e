// The endpoints of one destination service as a sidecar sees them, kept current by
// the registry's watch stream and grouped by version. The route layer picks a
// version by traffic weight (smooth weighted round-robin, so 90/10 is exact over
// every 10 picks and needs no dice); the balance layer picks within it.
import type {Endpoint, Registry, RegistryUpdate} from './registry.js'

interface VersionGroup {
  endpoints: Endpoint[]
  /** Their instance names, for routing decisions: built on change, shared by every request. */
  names: string[]
  /** Smooth-WRR running score. */
  current: number
}

const EMPTY: readonly Endpoint[] = Object.freeze([])
const NO_NAMES: readonly string[] = Object.freeze([])

export class EndpointSet {
  private list: Endpoint[] = []
  private readonly byVersion = new Map<string, VersionGroup>()
  private readonly unwatch: () => void
  private readonly listeners: Array<(endpoints: readonly Endpoint[]) => void> = []

  /** `weights`: version → percent; versions missing from it get no traffic. */
  constructor(
    readonly service: string,
    registry: Registry,
    private weights: Map<string, number>,
  ) {
    this.unwatch = registry.watch(service, (u) => this.apply(u))
  }

  private whyNotStarted: string | undefined = undefined

  /**
   * Why the service runs no instance on purpose (`mesh up` named others, its profile is off,
   * `mesh stop`): a call to it says so rather than just "no healthy instance".
   */
  get notStarted(): string | undefined {
    return this.whyNotStarted
  }

  /** Told by the instance manager, which keeps the record of it (control/instance-manager.ts). */
  declareNotStarted(why: string | undefined): void {
    this.whyNotStarted = why
  }

  /** Scaled versions with minScale 0 (the activator's VersionGates says which). */
  private atZero: ReadonlySet<string> = new Set()

  /**
   * Versions that may run no instance on purpose (scaled to zero): they keep their share of
   * traffic with none, and the activator holds their requests while one cold-starts.
   */
  setRoutableAtZero(versions: ReadonlySet<string>): void {
    this.atZero = versions
    for (const v of versions) if (!this.byVersion.has(v)) this.byVersion.set(v, {endpoints: [], names: [], current: 0})
  }

  setWeights(weights: Map<string, number>): void {
    this.weights = weights
  }

  currentWeights(): Map<string, number> {
    return this.weights
  }

  /** Called with the full list after every change (outlier detection tracks membership). */
  onChange(fn: (endpoints: readonly Endpoint[]) => void): void {
    this.listeners.push(fn)
    fn(this.list)
  }

  get size(): number {
    return this.list.length
  }

  all(): readonly Endpoint[] {
    return this.list
  }

  ofVersion(version: string): readonly Endpoint[] {
    return this.byVersion.get(version)?.endpoints ?? EMPTY
  }

  /** The instance names of `ofVersion(version)`, same order; never mutate it. */
  namesOf(version: string): readonly string[] {
    return this.byVersion.get(version)?.names ?? NO_NAMES
  }

  /**
   * The version for the next request. Smooth weighted round-robin (nginx): every
   * version gains its weight, the richest is chosen and pays the total back.
   * Versions without endpoints sit out, so their share goes to the others — except one
   * scaled to zero (setRoutableAtZero) while its service is started: its request is held
   * for a cold start.
   */
  pickVersion(): string | undefined {
    let total = 0
    let best: VersionGroup | undefined
    let bestName: string | undefined
    for (const [version, weight] of this.weights) {
      const group = this.byVersion.get(version)
      if (weight <= 0 || !group) continue
      if (group.endpoints.length === 0 && (this.whyNotStarted !== undefined || !this.atZero.has(version))) continue
      group.current += weight
      total += weight
      if (!best || group.current > best.current) {
        best = group
        bestName = version
      }
    }
    if (best) best.current -= total
    return bestName
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
    // Rebuilt on change only: the request path reads these arrays without copying.
    for (const group of this.byVersion.values()) {
      group.endpoints = []
      group.names = []
    }
    for (const e of this.list) {
      let group = this.byVersion.get(e.version)
      if (!group) this.byVersion.set(e.version, (group = {endpoints: [], names: [], current: 0}))
      group.endpoints.push(e)
      group.names.push(e.instance)
    }
    for (const fn of this.listeners) fn(this.list)
  }
}
