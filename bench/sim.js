// `npm run bench -- sim`: how fast `mesh sim` runs the shop template (issue #24's targets:
// ≥ 100,000 simulated hops — attempts through a sidecar stack into a service model — per
// wall-clock second on one core, and 1,000,000 ingress requests in under 60 s), and that
// its memory does not grow with the number of requests.
//
//   throughput  a warm-up run, then BENCH_SIM_THROUGHPUT ingress requests (default 200,000):
//               hops per wall second and per CPU second of this process (the two differ
//               when other work shares the cores: the CPU figure is what one core gives)
//   million     BENCH_SIM_REQUESTS ingress requests (default 1,000,000): wall time, CPU time;
//               heap used and RSS sampled BENCH_SIM_SAMPLES times during the run (at the end
//               of every k-th ingress request), and after a full GC before and after it
//   heap        heap used after a GC, after runs of N and of 10·N requests
//
// The shop's frontend is a command: service: the template's `simulate:` beside its command is
// its model, as `mesh sim` uses it.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import {REPO, fmt, machine, table} from './lib.js'

const {parseConfig} = await import('../dist/sim/config/load-config.js')
const {runSimulation} = await import('../dist/sim/virtual/simulation.js')
const {constantShape} = await import('../dist/sim/load/arrival-schedule.js')

const RPS = Number(process.env.BENCH_SIM_RPS ?? 1000)
const THROUGHPUT = Number(process.env.BENCH_SIM_THROUGHPUT ?? 200_000)
const MILLION = Number(process.env.BENCH_SIM_REQUESTS ?? 1_000_000)
const HEAP_N = Number(process.env.BENCH_SIM_HEAP ?? 20_000)
const SAMPLES = Number(process.env.BENCH_SIM_SAMPLES ?? 100)

// A full GC without --expose-gc on the command line (`npm run bench` passes none).
v8.setFlagsFromString('--expose-gc')
const gc = globalThis.gc ?? vm.runInNewContext('gc')

function shop() {
  const file = path.join(REPO, 'templates', 'shop', 'mesh.yaml')
  const {config, issues} = parseConfig(readFileSync(file, 'utf8'), file, {})
  if (!config) throw new Error(issues.map((i) => i.message).join('\n'))
  if (!config.services.find((s) => s.name === 'frontend')?.model) throw new Error(`${file}: frontend has no simulate: beside its command: mesh sim cannot run it`)
  return config
}

/** `requests` ingress requests at RPS (virtual); `onRequest(i)` at the end of every `every`-th one. */
async function run(requests, seed = 1, every = 0, onRequest) {
  const config = shop()
  let done = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await runSimulation(config, {
    shape: constantShape(RPS, (requests / RPS) * 1000),
    seed,
    // A sampled request's spans come here; its ingress client span is the last, when it is done.
    traceSampleEvery: every,
    onSpan: every > 0 ? (span) => span.kind === 'client' && span.service === 'ingress' && onRequest(++done * every) : undefined,
  })
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return {result, wallMs, cpuMs: (cpu.user + cpu.system) / 1000}
}

function heapMb() {
  gc()
  return process.memoryUsage().heapUsed / 1e6
}

const m = machine()
console.log(`mesh sim benchmark: shop template at ${RPS} req/s (virtual), node ${process.version}, ${m.cores} cores, ${m.cpu}`)

await run(20_000)
const t = await run(THROUGHPUT)
const hops = t.result.hopRequests
console.log(
  table(
    ['run', 'ingress', 'hops', 'wall s', 'CPU s', 'hops / wall s', 'hops / CPU s', 'target ≥ 100,000 hops / s'],
    [['throughput', fmt.int(t.result.ingressRequests), fmt.int(hops), fmt.f(t.wallMs / 1000, 1), fmt.f(t.cpuMs / 1000, 1), fmt.int((hops * 1000) / t.wallMs), fmt.int((hops * 1000) / t.cpuMs), (hops * 1000) / t.wallMs >= 100_000 ? 'met' : 'MISSED']],
  ),
)

const h0 = heapMb()
await run(HEAP_N, 2)
const h1 = heapMb()
await run(HEAP_N * 10, 3)
const h10 = heapMb()
console.log(`heap used after a GC: ${fmt.f(h0, 1)} MB before, ${fmt.f(h1, 1)} MB after ${fmt.int(HEAP_N)} requests, ${fmt.f(h10, 1)} MB after ${fmt.int(HEAP_N * 10)}`)

const before = heapMb()
const rssBefore = process.memoryUsage.rss() / 1e6
const samples = []
const every = Math.max(1, Math.floor(MILLION / SAMPLES))
const big = await run(MILLION, 4, every, (requests) => {
  const mem = process.memoryUsage()
  samples.push({requests, heap: mem.heapUsed / 1e6, rss: mem.rss / 1e6})
})
const after = heapMb()
console.log(
  table(
    ['run', 'ingress', 'hops', 'wall s', 'CPU s', 'hops / wall s', 'target < 60 s', 'heap after GC before / after MB'],
    [['million', fmt.int(big.result.ingressRequests), fmt.int(big.result.hopRequests), fmt.f(big.wallMs / 1000, 1), fmt.f(big.cpuMs / 1000, 1), fmt.int((big.result.hopRequests * 1000) / big.wallMs), big.wallMs < 60_000 ? 'met' : 'MISSED', `${fmt.f(before, 1)} / ${fmt.f(after, 1)}`]],
  ),
)

// Memory during the run, by tenth of its requests: the heap saws between collections, so each
// tenth shows its range; flat = the last tenth's peak no higher than the first's (+10%, +2 MB).
const tenths = Array.from({length: 10}, () => [])
for (const s of samples) tenths[Math.min(9, Math.floor((10 * (s.requests - 1)) / MILLION))].push(s)
const rows = tenths
  .map((xs, i) => [xs, i])
  .filter(([xs]) => xs.length > 0)
  .map(([xs, i]) => [
    `${fmt.int((i * MILLION) / 10)}–${fmt.int(((i + 1) * MILLION) / 10)}`,
    xs.length,
    `${fmt.f(Math.min(...xs.map((s) => s.heap)), 1)}–${fmt.f(Math.max(...xs.map((s) => s.heap)), 1)}`,
    `${fmt.f(Math.min(...xs.map((s) => s.rss)), 0)}–${fmt.f(Math.max(...xs.map((s) => s.rss)), 0)}`,
  ])
console.log(table(['requests done', 'samples', 'heap used MB', 'RSS MB'], rows))
const peak = (xs, k) => Math.max(...xs.map((s) => s[k]))
const first = tenths.find((xs) => xs.length > 0)
const last = tenths.findLast((xs) => xs.length > 0)
const flat = (k) => peak(last, k) <= peak(first, k) * 1.1 + 2
console.log(
  `memory during the run (RSS ${fmt.f(rssBefore, 0)} MB before it): heap peak ${fmt.f(peak(first, 'heap'), 1)} MB in the first tenth, ${fmt.f(peak(last, 'heap'), 1)} MB in the last; ` +
    `RSS ${fmt.f(peak(first, 'rss'), 0)} → ${fmt.f(peak(last, 'rss'), 0)} MB → ${flat('heap') && flat('rss') ? 'flat' : 'GROWS'}`,
)
