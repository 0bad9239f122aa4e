// `npm run bench -- sim`: how fast `mesh sim` runs the shop template (issue #24's targets:
// ≥ 100,000 simulated hops — attempts through a sidecar stack into a service model — per
// wall-clock second on one core, and 1,000,000 ingress requests in under 60 s), and that
// its memory does not grow with the number of requests.
//
//   throughput  a warm-up run, then BENCH_SIM_THROUGHPUT ingress requests (default 200,000):
//               hops per wall second and per CPU second of this process (the two differ
//               when other work shares the cores: the CPU figure is what one core gives)
//   million     BENCH_SIM_REQUESTS ingress requests (default 1,000,000): wall time, CPU time
//   heap        heap used after a run of N and of 10·N requests (after a GC when --expose-gc)
//
// The shop's frontend is a command: service; until its mesh.yaml carries a simulate: beside
// the command, it is given the model its server.js behaves like (catalog, then cart).
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {REPO, fmt, machine, table} from './lib.js'

const {parseConfig} = await import('../dist/sim/config/load-config.js')
const {runSimulation} = await import('../dist/sim/virtual/simulation.js')
const {constantShape} = await import('../dist/sim/load/arrival-schedule.js')

const RPS = Number(process.env.BENCH_SIM_RPS ?? 1000)
const THROUGHPUT = Number(process.env.BENCH_SIM_THROUGHPUT ?? 200_000)
const MILLION = Number(process.env.BENCH_SIM_REQUESTS ?? 1_000_000)
const HEAP_N = Number(process.env.BENCH_SIM_HEAP ?? 20_000)

function shop() {
  const file = path.join(REPO, 'templates', 'shop', 'mesh.yaml')
  const {config, issues} = parseConfig(readFileSync(file, 'utf8'), file, {})
  if (!config) throw new Error(issues.map((i) => i.message).join('\n'))
  const frontend = config.services.find((s) => s.name === 'frontend')
  frontend.model ??= {
    latency: {p50Ms: 2, p99Ms: 10},
    errorRate: 0,
    errorStatus: 500,
    calls: [
      {service: 'catalog', probability: 1, path: '/items', method: 'GET'},
      {service: 'cart', probability: 1, path: '/cart', method: 'GET'},
    ],
    callMode: 'sequential',
    responseBytes: 512,
    concurrency: 0,
    seed: 0,
  }
  return config
}

async function run(requests, seed = 1) {
  const config = shop()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await runSimulation(config, {shape: constantShape(RPS, (requests / RPS) * 1000), seed})
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return {result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000}
}

function heapMb() {
  globalThis.gc?.()
  return process.memoryUsage().heapUsed / 1e6
}

const m = machine()
console.log(`mesh sim benchmark: shop template at ${RPS} req/s (virtual), node ${process.version}, ${m.cores} cores, ${m.cpu}`)

await run(20_000)
const t = await run(THROUGHPUT)
const hops = t.result.hopRequests
console.log(
  table(
    ['run', 'ingress', 'hops', 'wall s', 'CPU s', 'hops / wall s', 'hops / CPU s'],
    [['throughput', fmt.int(t.result.ingressRequests), fmt.int(hops), fmt.f(t.wallMs / 1000, 1), fmt.f(t.cpuMs / 1000, 1), fmt.int((hops * 1000) / t.wallMs), fmt.int((hops * 1000) / t.cpuMs)]],
  ),
)

const h0 = heapMb()
await run(HEAP_N, 2)
const h1 = heapMb()
await run(HEAP_N * 10, 3)
const h10 = heapMb()
console.log(`heap used: ${fmt.f(h0, 1)} MB before, ${fmt.f(h1, 1)} MB after ${fmt.int(HEAP_N)} requests, ${fmt.f(h10, 1)} MB after ${fmt.int(HEAP_N * 10)}`)

const before = heapMb()
const big = await run(MILLION, 4)
const after = heapMb()
console.log(
  table(
    ['run', 'ingress', 'hops', 'wall s', 'CPU s', 'target', 'heap before MB', 'heap after MB'],
    [['million', fmt.int(big.result.ingressRequests), fmt.int(big.result.hopRequests), fmt.f(big.wallMs / 1000, 1), fmt.f(big.cpuMs / 1000, 1), big.wallMs < 60_000 ? '< 60 s: met' : '< 60 s: MISSED', fmt.f(before, 1), fmt.f(after, 1)]],
  ),
)
