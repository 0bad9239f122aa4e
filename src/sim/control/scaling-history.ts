// What `mesh history SERVICE` lists besides deploys: the autoscaler's decisions ("scaled
// catalog 2 → 5: panic, …") and its failed starts. The daemon's event log is one ring for
// everything (health changes, ejections, faults), so a busy hour would push the scaling
// out of it; these are kept apart as well, a bounded ring per service, with the event log's
// sequence numbers and times so the two read alike.
import type {ScaleFailedEvent, ScalingEvent, ScalingStatus} from '../scaling/autoscaler.js'
import {EventLog, type Stamped} from './event-log.js'

export type ScalingRecord = ScalingEvent | ScaleFailedEvent

/** Per service: enough for an afternoon of decisions (one per tick at most while it flaps). */
export const SCALING_KEPT_PER_SERVICE = 200

function isScaling(event: {kind: string}): event is ScalingRecord {
  return event.kind === 'scaled' || event.kind === 'scale-failed'
}

export class ScalingHistory {
  private readonly byService = new Map<string, Array<Stamped<ScalingRecord>>>()

  constructor(private readonly perService = SCALING_KEPT_PER_SERVICE) {}

  record(stamped: Stamped<ScalingRecord>): void {
    const service = stamped.event.service
    let list = this.byService.get(service)
    if (!list) this.byService.set(service, (list = []))
    list.push(stamped)
    if (list.length > this.perService) list.shift()
  }

  /** Oldest first; every service's without one. */
  of(service?: string): Array<Stamped<ScalingRecord>> {
    if (service !== undefined) return [...(this.byService.get(service) ?? [])]
    return [...this.byService.values()].flat().sort((a, b) => a.seq - b.seq)
  }

  /**
   * The last failed scale-up while it still matters: some autoscaled version of the service has
   * fewer instances than the autoscaler wants. Once it has them (a retry worked) or wants fewer,
   * the failure is history only.
   */
  unresolvedFailure(service: string, scaling: ScalingStatus[] | undefined): Stamped<ScaleFailedEvent> | undefined {
    if (!scaling?.some((s) => s.actual < s.desired)) return undefined
    const list = this.byService.get(service) ?? []
    for (let i = list.length - 1; i >= 0; i--) if (list[i].event.kind === 'scale-failed') return list[i] as Stamped<ScaleFailedEvent>
    return undefined
  }
}

/** The daemon's event log, keeping scaling events apart as well (ScalingHistory). */
export class MeshEventLog<T extends {kind: string}> extends EventLog<T> {
  readonly scaling = new ScalingHistory()

  override push(event: T, wallMs: number): Stamped<T> {
    const stamped = super.push(event, wallMs)
    if (isScaling(stamped.event)) this.scaling.record(stamped as unknown as Stamped<ScalingRecord>)
    return stamped
  }
}
