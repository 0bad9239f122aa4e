// `node bench/sim-latency.js` (after `npm run build`): how closely a simulated service
// keeps its declared latency, measured directly (no mesh): a client sends REQUESTS (2000)
// requests one after another over one keep-alive connection, for each declaration and each
// way of sleeping (BENCH_WAKE of sim-latency-service.js):
//
//   precise  a deadline heap over PreciseWake (one worker thread blocked in Atomics.wait):
//            what a simulated service's process uses
//   timer    the same heap over setTimeout (whole milliseconds): the old sleeps
//
// A declaration's p50/p99 are compared three ways: with what was declared; with the
// quantiles of the latencies the service actually drew (the same seeded stream, so this
// is the sleep's own error, without the sampling noise of 2000 draws); and the `zero`
// row (latency 0) gives the HTTP round trip the client sees anyway, subtracted in
// "above zero". "served" is the service's own view (arrival to last byte written). The
// service's CPU per request is from /proc (utime+stime).
// Then the sleep alone, in this process, no HTTP: SLEEPS (1000) sleeps one after another
// of each length, how late each ends (it never ends early) and this process's CPU.
//
// Env knobs: BENCH_REQUESTS (2000), BENCH_ROUNDS (3: the median round is reported), BENCH_JSON.
import {writeFileSync} from 'node:fs'
import {Pool} from 'undici'
import {cpuMicros, fmt, machine, startServer, table} from './lib.js'
import {latencyModel} from '../dist/sim/model/latency-model.js'
import {SeededRandom} from '../dist/sim/time/random.js'
import {DeadlineHeap} from '../dist/sim/time/deadline-queue.js'
import {preciseWake} from '../dist/sim/time/precise-wake.js'
import {realClock} from '../dist/sim/time/clock.js'

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000)
const SLEEPS = Number(process.env.BENCH_SLEEPS ?? 1000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SEED = 7
const DECLARED = [
  {name: 'zero', p50Ms: 0, p99Ms: 0},
  {name: '0.5 / 2 ms', p50Ms: 0.5, p99Ms: 2},
  {name: '1 / 5 ms', p50Ms: 1, p99Ms: 5},
  {name: '0.2 / 0.8 ms', p50Ms: 0.2, p99Ms: 0.8},
]
const log = (s) => process.stderr.write(s + '\n')

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** The latencies the service draws for its first n requests (draw order: latency, then the error uniform). */
function drawn(d, n) {
  const model = latencyModel(d)
  const random = new SeededRandom(SEED)
  const out = []
  for (let i = 0; i < n; i++) {
    out.push(model.sample(random))
    random.next()
  }
  return out.sort((a, b) => a - b)
}

async function measure(d, wake) {
  const simulate = JSON.stringify({latency: {p50Ms: d.p50Ms, p99Ms: d.p99Ms}, seed: SEED, responseBytes: 64})
  const server = await startServer('sim-latency-service.js', {MESH_SIMULATE: simulate, BENCH_WAKE: wake})
  const pool = new Pool(`http://127.0.0.1:${server.port}`, {connections: 1})
  let out = ''
  server.child.stdout.on('data', (d) => { out += d })
  // After 'exit', its stdout may still hold the SERVED line: 'close' comes once it is read.
  const closed = new Promise((resolve) => server.child.once('close', resolve))
  let client
  try {
    // No warm-up: the measured requests must be the service's first REQUESTS draws, for
    // "drawn" to be their latencies.
    const samples = []
    const cpu0 = cpuMicros(server.pid)
    for (let i = 0; i < REQUESTS; i++) {
      const began = performance.now()
      const res = await pool.request({path: '/', method: 'GET'})
      await res.body.dump()
      samples.push(performance.now() - began)
    }
    const cpuPerReq = (cpuMicros(server.pid) - cpu0) / REQUESTS
    samples.sort((a, b) => a - b)
    client = {p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), cpuPerReq}
  } finally {
    await pool.close()
    // 'close' rather than lib.js's stopChild: it comes once the SERVED line has been read.
    server.child.kill('SIGTERM')
    const kill = setTimeout(() => server.child.kill('SIGKILL'), 5_000)
    await closed
    clearTimeout(kill)
  }
  const served = JSON.parse(/SERVED (.*)/.exec(out)?.[1] ?? '{}')
  return {...client, servedP50: served.p50, servedP99: served.p99}
}

const results = []
for (const wake of ['precise', 'timer']) {
  for (const d of DECLARED) {
    const rounds = []
    for (let r = 0; r < ROUNDS; r++) rounds.push(await measure(d, wake))
    rounds.sort((a, b) => a.p50 - b.p50)
    const median = rounds[Math.floor(rounds.length / 2)]
    const draws = drawn(d, REQUESTS)
    results.push({wake, ...d, ...median, drawnP50: quantile(draws, 0.5), drawnP99: quantile(draws, 0.99), rounds})
    log(`${wake} ${d.name}: p50 ${median.p50.toFixed(3)} p99 ${median.p99.toFixed(3)} ms`)
  }
}

const m = machine()
console.log(`\nsimulated service latency, ${REQUESTS} sequential requests, median of ${ROUNDS} rounds; ${m.cores} cores, ${m.cpu}, Node ${m.node}\n`)
const rows = results.map((r) => {
  const zero = results.find((z) => z.wake === r.wake && z.p50Ms === 0)
  const isZero = r.p50Ms === 0
  const above = r.p50 - zero.p50
  return [
    `${r.wake} ${r.name}`,
    fmt.f(r.p50, 3), fmt.f(r.p99, 3),
    isZero ? '–' : fmt.f(above, 3), isZero ? '–' : fmt.x(above / r.drawnP50), isZero ? '–' : fmt.x(r.p99 / r.drawnP99),
    isZero ? '–' : `${fmt.f(r.drawnP50, 3)} / ${fmt.f(r.drawnP99, 3)}`,
    `${fmt.f(r.servedP50, 3)} / ${fmt.f(r.servedP99, 3)}`,
    isZero ? '–' : fmt.x((r.servedP50 - zero.servedP50) / r.drawnP50),
    fmt.f(r.cpuPerReq, 1),
  ]
})
console.log(table(['wake, declared p50 / p99', 'p50 ms', 'p99 ms', 'p50 − zero row', '(p50 − zero) ÷ drawn p50', 'p99 ÷ drawn p99', 'drawn p50 / p99', 'served p50 / p99', '(served p50 − zero) ÷ drawn', 'service CPU µs/req'], rows))

const alone = []
for (const [wake, heap] of [['precise', new DeadlineHeap(realClock, preciseWake(realClock))], ['timer', new DeadlineHeap(realClock)]]) {
  for (const ms of [0.2, 0.5, 1, 2, 5]) {
    const late = []
    const cpu0 = process.cpuUsage()
    const began = performance.now()
    for (let i = 0; i < SLEEPS; i++) {
      const t = performance.now()
      await heap.sleep(ms)
      late.push(performance.now() - t - ms)
    }
    const cpu = process.cpuUsage(cpu0)
    late.sort((a, b) => a - b)
    alone.push({wake, ms, p50: quantile(late, 0.5), p99: quantile(late, 0.99), cpuShare: (cpu.user + cpu.system) / 1000 / (performance.now() - began)})
  }
}
console.log(`\nthe sleep alone (in-process, no HTTP), ${SLEEPS} sleeps of each length one after another\n`)
console.log(table(['wake, sleep', 'late p50 ms', 'late p99 ms', 'late p50 ÷ sleep', 'CPU while sleeping'], alone.map((a) => [
  `${a.wake} ${a.ms} ms`, fmt.f(a.p50, 3), fmt.f(a.p99, 3), fmt.x(a.p50 / a.ms), `${fmt.f(a.cpuShare * 100, 0)}%`,
])))
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({machine: m, requests: REQUESTS, results, alone}, null, 2))
process.exit(0)
