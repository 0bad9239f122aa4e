// What an unstable service needs (issue #24, items 7 and 8): a run that finds a service offered
// more work than its slots can do (utilisation ρ ≥ 1 over its n instances) also knows the
// fewest instances that would hold that work, ρ·n/N < 1, so the report can say "needs ≥ N"
// instead of leaving the arithmetic to the reader. A lower bound: a service below 100% still
// queues, and the p99 an SLO asks for may need more (a sweep over replicas finds how many).
import type {MeshConfig} from '../config/types.js'
import {modelOf} from './simulation.js'

export interface UnstableService {
  service: string
  utilisation: number
  /** Instances the run had whose model has a concurrency limit (the slots the utilisation is of). */
  instances?: number
  /** The fewest such instances for which the same work is below 100%. */
  needs?: number
}

export function withInstancesNeeded(config: MeshConfig, unstable: ReadonlyArray<{service: string; utilisation: number}>): UnstableService[] {
  return unstable.map((u) => {
    const service = config.services.find((s) => s.name === u.service)
    const instances = service?.versions.reduce((n, v) => n + ((modelOf(service, v)?.concurrency ?? 0) > 0 ? v.replicas : 0), 0) ?? 0
    if (instances === 0) return {...u}
    return {...u, instances, needs: Math.floor(u.utilisation * instances) + 1}
  })
}
