// Entry point of a simulated service's child process:
//   node <repo>/dist/sim/model/simulated-service-main.js
// The supervisor sets PORT, MESH_SERVICE, MESH_VERSION, MESH_INSTANCE, MESH_SIMULATE
// and one <DEP>_URL per dependency; see readSimulatedServiceEnv.

import {realClock} from '../time/clock.js'
import {SeededRandom, seedFrom} from '../time/random.js'
import {MeshError} from '../errors.js'
import {createSimulatedService, readSimulatedServiceEnv, type SimulatedServiceEnv} from './simulated-service.js'
import {latencyModel} from './latency-model.js'
import {dependencyEnvName} from '../config/env-names.js'
import {DeadlineHeap} from '../time/deadline-queue.js'
import {preciseWake} from '../time/precise-wake.js'

/** How long start waits for connections to its dependencies' sidecars before it listens anyway. */
const WARM_WITHIN_MS = 1_000

function fail(message: string, hints: string[], exitCode: number): never {
  process.stderr.write(`simulated service: ${message}\n${hints.map((h) => `  ${h}\n`).join('')}`)
  process.exit(exitCode)
}

let env: SimulatedServiceEnv
try {
  env = readSimulatedServiceEnv(process.env)
} catch (error) {
  if (error instanceof MeshError) fail(error.message, error.hints, 2)
  throw error
}

const {port, service, version, instance, config, dependencyUrls, missingUrls} = env
const label = `simulated ${service}@${version} (${instance})`
for (const dep of missingUrls) {
  process.stderr.write(`${label}: ${dependencyEnvName(dep)} is not set; calls to ${dep} will answer 500. Add ${dep} to dependsOn.\n`)
}

// Each instance draws its own stream: same seed, different replicas, different dice.
const random = new SeededRandom(config.seed ^ seedFrom(instance))
// Latencies of a fraction of a millisecond are kept: setTimeout would round them to whole ones.
const sleeps = new DeadlineHeap(realClock, preciseWake(realClock))
const sim = createSimulatedService({config, service, version, instance, dependencyUrls, clock: realClock, random, sleeps})

sim.server.on('error', (error: NodeJS.ErrnoException) => {
  fail(`${label} cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}`, [], 1)
})

function listen(): void {
  if (stopping) return
  sim.server.listen(port, '127.0.0.1', () => {
    const address = sim.server.address()
    const actual = typeof address === 'object' && address ? address.port : port
    process.stdout.write(`${label} listening on 127.0.0.1:${actual}\n`)
  })
}

// simulate.coldStart: a function's init phase, before it listens (so before it is healthy). A
// stream of its own, so the requests' dice are the same with or without it.
const initMs = config.coldStart ? latencyModel(config.coldStart).sample(new SeededRandom(config.seed ^ seedFrom(instance, 'coldStart'))) : 0
// Its dependencies' connections open during the init phase (and before it listens, so
// before its health check passes), as a function's init code opens its clients.
const warm = sim.warm(WARM_WITHIN_MS)
const ready = (): void => void warm.then(listen)
if (initMs > 0) {
  process.stdout.write(`${label} init phase: ${Math.round(initMs)} ms (simulate.coldStart)\n`)
  setTimeout(ready, initMs)
} else {
  ready()
}

let stopping = false
function stop(signal: NodeJS.Signals): void {
  // A second signal means "now": the supervisor escalates to SIGKILL anyway.
  if (stopping) process.exit(1)
  stopping = true
  process.stdout.write(`${label} received ${signal}; finishing in-flight requests\n`)
  sim.close().then(
    () => process.exit(0),
    (error: unknown) => fail(`${label} failed to close: ${String(error)}`, [], 1),
  )
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
