// The endpoints of one destination service as a sidecar sees them, kept current by
// the registry's watch stream. Picking is round-robin for now; the policy stack
// (load balancers, outlier ejection) replaces `pick` in the traffic-policy work.
import type {Endpoint, Registry, RegistryUpdate} from '../control/registry.js'

export class EndpointSet {
  private list: Endpoint[] = []
  private next = 0
  private readonly unwatch: () => void

  constructor(
    readonly service: string,
    registry: Registry,
  ) {
    this.unwatch = registry.watch(service, (u) => this.apply(u))
  }

  get size(): number {
    return this.list.length
  }

  all(): readonly Endpoint[] {
    return this.list
  }

  pick(): Endpoint | undefined {
    const n = this.list.length
    if (n === 0) return undefined
    const e = this.list[this.next % n]
    this.next = (this.next + 1) % n
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
  }
}
