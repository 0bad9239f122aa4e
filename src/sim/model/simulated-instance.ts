// One simulated instance made from its environment (PORT, MESH_SIMULATE, <DEP>_URL…), as both
// its own process (simulated-service-main.ts) and a simulation host (simulation-host-main.ts)
// run it: the same env contract, dice and init phase either way.
import type {Clock} from '../time/clock.js'
import type {DeadlineHeap} from '../time/deadline-queue.js'
import {SeededRandom, seedFrom} from '../time/random.js'
import {dependencyEnvName} from '../config/env-names.js'
import {createSimulatedService, readSimulatedServiceEnv, type SimulatedService} from './simulated-service.js'
import {latencyModel} from './latency-model.js'

/** How long start waits for connections to its dependencies' sidecars before it listens anyway. */
export const WARM_WITHIN_MS = 1_000

export interface SimulatedInstance {
  port: number
  /** `simulated SERVICE@VERSION (INSTANCE)`: how its log lines begin. */
  label: string
  sim: SimulatedService
  /** simulate.coldStart: how long it waits before it listens (0 without one). */
  initMs: number
  /** Lines for its log before it starts (a dependency called without its <DEP>_URL). */
  warnings: string[]
}

/**
 * Throws MeshError MESH_BAD_ENV when the environment is not what the mesh sets. `sleeps`: where
 * its latencies sleep (simulated-service.ts); by default a heap over the clock's own timer.
 */
export function simulatedInstance(env: NodeJS.ProcessEnv, clock: Clock, sleeps?: DeadlineHeap): SimulatedInstance {
  const {port, service, version, instance, config, dependencyUrls, missingUrls} = readSimulatedServiceEnv(env)
  const label = `simulated ${service}@${version} (${instance})`
  const warnings = missingUrls.map((dep) => `${label}: ${dependencyEnvName(dep)} is not set; calls to ${dep} will answer 500. Add ${dep} to dependsOn.`)
  // Each instance draws its own stream: same seed, different replicas, different dice.
  const random = new SeededRandom(config.seed ^ seedFrom(instance))
  const sim = createSimulatedService({config, service, version, instance, dependencyUrls, clock, random, sleeps})
  // A stream of its own, so the requests' dice are the same with or without a cold start.
  const initMs = config.coldStart ? latencyModel(config.coldStart).sample(new SeededRandom(config.seed ^ seedFrom(instance, 'coldStart'))) : 0
  return {port, label, sim, initMs, warnings}
}
