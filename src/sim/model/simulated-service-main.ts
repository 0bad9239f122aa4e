// Entry point of a simulated service's child process:
//   node <repo>/dist/sim/model/simulated-service-main.js
// The supervisor sets PORT, MESH_SERVICE, MESH_VERSION, MESH_INSTANCE, MESH_SIMULATE
// and one <DEP>_URL per dependency; see readSimulatedServiceEnv.

import {EnvNames} from '../config/env-names.js'
import {realClock} from '../time/clock.js'
import {MeshError} from '../errors.js'
import {DeadlineHeap} from '../time/deadline-queue.js'
import {preciseWake} from '../time/precise-wake.js'
import {simulatedInstance, WARM_WITHIN_MS, type SimulatedInstance} from './simulated-instance.js'

function fail(message: string, hints: string[], exitCode: number): never {
  process.stderr.write(`simulated service: ${message}\n${hints.map((h) => `  ${h}\n`).join('')}`)
  process.exit(exitCode)
}

let made: SimulatedInstance
try {
  // Latencies of a fraction of a millisecond are kept: setTimeout would round them to whole ones.
  made = simulatedInstance(process.env, realClock, new DeadlineHeap(realClock, preciseWake(realClock)))
} catch (error) {
  if (error instanceof MeshError) fail(error.message, error.hints, 2)
  throw error
}

const {port, label, sim, initMs, warnings} = made
// In a pod (mesh export kubernetes) the Service and a sidecar reach it at the pod's IP, not loopback.
const host = process.env[EnvNames.listenHost] || '127.0.0.1'
for (const line of warnings) process.stderr.write(`${line}\n`)

sim.server.on('error', (error: NodeJS.ErrnoException) => {
  fail(`${label} cannot listen on ${host}:${port}: ${error.code ?? error.message}`, [], 1)
})

function listen(): void {
  if (stopping) return
  sim.server.listen(port, host, () => {
    const address = sim.server.address()
    const actual = typeof address === 'object' && address ? address.port : port
    process.stdout.write(`${label} listening on ${host}:${actual}\n`)
  })
}

// simulate.coldStart: a function's init phase, before it listens (so before it is healthy).
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
