// One simulated service for bench/sim-latency.js, as simulated-service-main.js runs it,
// with the way it sleeps chosen by BENCH_WAKE: `precise` (what the service process uses:
// a deadline heap over PreciseWake) or `timer` (the same heap over setTimeout, i.e. the
// old whole-millisecond sleeps). MESH_SIMULATE is the service's `simulate:` JSON.
import {createSimulatedService, parseSimulateConfig} from '../dist/sim/model/simulated-service.js'
import {DeadlineHeap} from '../dist/sim/time/deadline-queue.js'
import {preciseWake} from '../dist/sim/time/precise-wake.js'
import {realClock} from '../dist/sim/time/clock.js'
import {SeededRandom} from '../dist/sim/time/random.js'
import {exitOnSignal} from './lib.js'

const config = parseSimulateConfig(JSON.parse(process.env.MESH_SIMULATE ?? '{}'))
const wake = process.env.BENCH_WAKE ?? 'precise'
if (!['precise', 'timer'].includes(wake)) throw new Error(`BENCH_WAKE is precise or timer, not ${wake}`)
const sleeps = new DeadlineHeap(realClock, wake === 'precise' ? preciseWake(realClock) : undefined)
const sim = createSimulatedService({
  config, service: 'sim', version: 'v1', instance: 'sim-v1-0', dependencyUrls: {},
  clock: realClock, random: new SeededRandom(config.seed), sleeps,
})
// The service's own view of each request, arrival to last byte written: what the client
// measures less the round trip and the client's own wake-up.
const served = []
sim.server.prependListener('request', (req, res) => {
  const began = performance.now()
  res.once('finish', () => served.push(performance.now() - began))
})
sim.server.listen(0, '127.0.0.1', () => process.stdout.write(`LISTENING ${sim.server.address().port}\n`))
exitOnSignal(sim.server, {
  close: () => {
    served.sort((a, b) => a - b)
    const q = (p) => served[Math.min(served.length - 1, Math.floor(p * served.length))]
    process.stdout.write(`SERVED ${JSON.stringify({p50: q(0.5), p99: q(0.99)})}\n`)
    return sim.close()
  },
})
