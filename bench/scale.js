// `npm run bench -- scale` (or `node bench/scale.js` after `npm run build`): what N simulated
// services cost, run in shared simulation hosts against one process per instance, in ONE run.
//
// For N = 10, 50, 100, 200 (`--quick`: 10, 50; `--sizes 10,40`) and two shapes:
//   chain  s0 → s1 → … each `latency: {p50: 1ms, p99: 5ms}`, one replica. A chain is at most
//          MAX_DEPTH (40) services deep: past that one trace is a 400-span waterfall nobody
//          reads, so N = 100 is chains of 40, 40 and 20; the deepest path (chain 0) is measured.
//   tree   `mesh init --template large --services N --seed 1` (gateway, aggregators, leaves,
//          databases; parallel calls with probabilities). Its spine is always called, so every
//          request goes down its deepest path.
// and two modes:
//   hosted    MESH_SIMULATION_HOSTS=BENCH_HOSTS (1): simulated instances inside shared hosts
//   isolated  `simulate.isolated: true` on every service: one process per instance (the old way)
//
// Measured per (shape, N, mode):
//   RSS        VmRSS summed over the daemon and every process below it (/proc), after the
//              steady requests; PSS beside it (shared pages counted once: what the processes
//              really cost together); the number of processes
//   up         wall time of `mesh up -d` (CLI start included: what a user waits for)
//   first      the first request through the deepest path, right after `mesh up -d` returns
//   hop        steady overhead per hop at low load: after WARM (200) requests to warm the JIT,
//              STEADY (20) one at a time, ≥ 20 ms apart; for each, (root span duration − the
//              simulated latencies the instances drew on its critical path) / hops on that
//              path, median over the requests. The draws
//              are replayed from each instance's seeded stream (model/simulated-instance.ts: the
//              same seed, the same order), aligned by its server spans' own time (never shorter
//              than its draw); the alignment offset is printed when it is not 0.
//   CPU/hop    CPU of the daemon and every process below it over those requests, less its idle
//              rate (health checks, timers; measured over 2 s before), per hop served
//   steady     median client latency of those requests
//   down       wall time of `mesh down`
//
// Flags: --quick, --sizes A,B, --shapes chain,tree, --max-isolated N (isolated rows above N are
// "skipped": ~60 MB per instance, N = 200 needs ~12 GB), --precision (also the latency precision
// row of a 0.5/2 ms service at the mesh, hosted vs isolated).
// Env: BENCH_HOSTS (1), BENCH_STEADY (20), BENCH_WARM (200: requests before the steady ones,
// one at a time, on the instances' warm-up draw stream), BENCH_JSON (raw results).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {alive, cpuMicros, fmt, forceMeshDown, machine, option, processTree, REPO, table} from './lib.js'
import {connect} from '../dist/sim/control/control-client.js'
import {meshPaths} from '../dist/sim/control/state-file.js'
import {loadConfig} from '../dist/sim/config/load-config.js'
import {latencyModel} from '../dist/sim/model/latency-model.js'
import {WARM_UP_TRACESTATE} from '../dist/sim/model/simulated-service.js'
import {SeededRandom, seedFrom} from '../dist/sim/time/random.js'

const args = process.argv.slice(2)
const QUICK = args.includes('--quick')
const PRECISION = args.includes('--precision')
const SIZES = (option('--sizes', QUICK ? '10,50' : '10,50,100,200')).split(',').map(Number)
const SHAPES = option('--shapes', 'chain,tree').split(',')
const MAX_ISOLATED = Number(option('--max-isolated', 'Infinity'))
const HOSTS = process.env.BENCH_HOSTS ?? '1'
const STEADY = Number(process.env.BENCH_STEADY ?? 20)
const WARM = Number(process.env.BENCH_WARM ?? 200)
const MAX_DEPTH = 40
const CLI = path.join(REPO, 'bin', 'run.js')
const log = (s) => process.stderr.write(s + '\n')

let current // {dir, file} of the mesh up now, for cleanup
function cleanupSync() {
  if (!current) return
  const {dir, file} = current
  current = undefined
  forceMeshDown(dir, file, 60_000)
  rmSync(dir, {recursive: true, force: true})
}
process.on('exit', cleanupSync)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130))

// ---- the meshes ----

function chainYaml(n, isolated) {
  const lines = ['name: scale', 'ingress:', '  port: 0', '  routes:']
  const chains = []
  for (let start = 0; start < n; start += MAX_DEPTH) chains.push([start, Math.min(n, start + MAX_DEPTH)])
  chains.forEach(([start], k) => lines.push(`    - {prefix: /c${k}, service: s${start}}`))
  lines.push('services:')
  for (const [start, end] of chains) {
    for (let i = start; i < end; i++) {
      lines.push(`  s${i}:`)
      if (i + 1 < end) lines.push(`    dependsOn: [s${i + 1}]`)
      lines.push('    simulate:', '      latency: {p50: 1ms, p99: 5ms}')
      if (isolated) lines.push('      isolated: true')
      if (i + 1 < end) lines.push(`      calls: [{service: s${i + 1}}]`)
    }
  }
  return {yaml: lines.join('\n') + '\n', path: '/c0', depth: Math.min(n, MAX_DEPTH)}
}

function treeYaml(n, isolated, dir) {
  execFileSync(process.execPath, [CLI, 'init', '--template', 'large', '--services', String(n), '--seed', '1'], {cwd: dir, stdio: 'ignore', timeout: 60_000})
  let yaml = readFileSync(path.join(dir, 'mesh.yaml'), 'utf8').replace(/^( {2}port:) \d+$/m, '$1 0')
  if (isolated) yaml = yaml.replace(/^( {4}simulate:)$/gm, '$1\n      isolated: true')
  const depth = Number(/at most (\d+) on a path/.exec(yaml)?.[1] ?? NaN)
  return {yaml, path: '/', depth}
}

// ---- /proc ----

function memory(root) {
  let rss = 0
  let pss = 0
  const pids = processTree(root)
  for (const pid of pids) {
    try {
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
      pss += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0)
    } catch {}
  }
  return {rssMb: rss / 1024, pssMb: pss / 1024, processes: pids.length}
}

// ---- requests and traces ----

const hex = (bytes) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')

async function traced(url, tracestate) {
  const traceId = hex(16)
  const t0 = performance.now()
  const headers = {traceparent: `00-${traceId}-${hex(8)}-01`, ...(tracestate ? {tracestate} : {})}
  const res = await fetch(url, {headers, signal: AbortSignal.timeout(60_000)})
  await res.arrayBuffer()
  const ms = performance.now() - t0
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`)
  return {traceId, ms}
}

/**
 * The spans of one trace as a tree: each server span of a simulated instance with its own
 * time (its duration less the union of its outgoing client spans) and its children.
 */
function spanTree(spans) {
  const byParent = new Map()
  for (const s of spans) {
    const list = byParent.get(s.parentId) ?? []
    list.push(s)
    byParent.set(s.parentId, list)
  }
  const ids = new Set(spans.map((s) => s.spanId))
  const roots = spans.filter((s) => !s.parentId || !ids.has(s.parentId))
  const root = roots.sort((a, b) => b.durationMs - a.durationMs)[0]
  return {root, children: (s) => byParent.get(s.spanId) ?? []}
}

function union(intervals) {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0])
  let total = 0
  let end = -Infinity
  for (const [a, b] of sorted) {
    if (b <= end) continue
    total += b - Math.max(a, end)
    end = b
  }
  return total
}

/** The server spans of simulated instances in a trace, in the order the instance saw them. */
function serverSpans(spans) {
  const {children} = spanTree(spans)
  return spans
    .filter((s) => s.kind === 'server' && s.instance)
    .map((s) => {
      const out = children(s).filter((c) => c.kind === 'client')
      const self = s.durationMs - union(out.map((c) => [c.startMs, c.startMs + c.durationMs]))
      return {span: s, self}
    })
}

/**
 * Each instance's draws, replayed: per request, one uniform per declared call, then the
 * latency, then the error uniform (simulated-service.ts `draw`).
 */
function replayer(config) {
  const streams = new Map()
  return (instance, service) => {
    let st = streams.get(instance)
    if (!st) {
      const sim = config.services.find((s) => s.name === service).versions.find((v) => instance.startsWith(`${service}-${v.name}-`)).workload.simulate
      const random = new SeededRandom(sim.seed ^ seedFrom(instance))
      const model = latencyModel(sim.latency)
      const drawn = []
      st = {
        at(k) {
          while (drawn.length <= k) {
            for (let i = 0; i < sim.calls.length; i++) random.next()
            drawn.push(model.sample(random))
            random.next()
          }
          return drawn[k]
        },
      }
      streams.set(instance, st)
    }
    return st
  }
}

/**
 * Lines the requests' server spans up with each instance's draws. A request the bench did not
 * send (a warm-up) shifts an instance's stream: the offset is the smallest one under which no
 * span's own time is shorter than its draw (a sleep never ends early; 0.05 ms of clock noise).
 */
function align(traces, config) {
  const replay = replayer(config)
  const seen = new Map() // instance → [{self}] in request order
  for (const t of traces) for (const x of serverSpans(t.spans)) {
    const list = seen.get(x.span.instance) ?? []
    list.push(x.self)
    seen.set(x.span.instance, list)
  }
  const offsets = new Map()
  for (const [instance, selfs] of seen) {
    const service = traces.flatMap((t) => t.spans).find((s) => s.instance === instance).service
    const stream = replay(instance, service)
    let found = -1
    for (let off = 0; off <= 200 && found < 0; off++) if (selfs.every((self, k) => self >= stream.at(off + k) - 0.05)) found = off
    offsets.set(instance, {stream, offset: found < 0 ? 0 : found, misfit: found < 0})
  }
  return offsets
}

/** (root duration − draws on the critical path) / hops on it, per trace; the k-th visit of each instance. */
function perHop(traces, config) {
  const streams = align(traces, config)
  const visits = new Map()
  return traces.map((t) => {
    const {root, children} = spanTree(t.spans)
    const draw = new Map()
    for (const x of serverSpans(t.spans)) {
      const k = visits.get(x.span.instance) ?? 0
      visits.set(x.span.instance, k + 1)
      const s = streams.get(x.span.instance)
      draw.set(x.span.spanId, s.stream.at(s.offset + k))
    }
    // The critical path: from each span, into the child that ends last.
    let hops = 0
    let simulated = 0
    let s = root
    while (s) {
      if (s.kind === 'server' && draw.has(s.spanId)) {
        hops++
        simulated += draw.get(s.spanId)
      }
      const next = children(s).sort((a, b) => b.startMs + b.durationMs - (a.startMs + a.durationMs))[0]
      s = next
    }
    return {hops, simulated, durationMs: root.durationMs, perHopMs: (root.durationMs - simulated) / hops}
  }).concat([{offsets: [...streams].filter(([, v]) => v.offset !== 0 || v.misfit).map(([k, v]) => `${k}${v.misfit ? ' (no fit)' : ` +${v.offset}`}`)}])
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function dump(spans) {
  const t0 = Math.min(...spans.map((s) => s.startMs))
  for (const s of [...spans].sort((a, b) => a.startMs - b.startMs)) log(`  ${s.kind.padEnd(6)} ${String(s.service).padEnd(10)} ${String(s.instance ?? '').padEnd(10)} +${(s.startMs - t0).toFixed(2)} ${s.durationMs.toFixed(3)}`)
}

// ---- one mesh ----

async function one(shape, n, mode) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-scale-'))
  const file = path.join(dir, 'mesh.yaml')
  const isolated = mode === 'isolated'
  const mesh = shape === 'chain' ? chainYaml(n, isolated) : treeYaml(n, isolated, dir)
  writeFileSync(file, mesh.yaml)
  const env = {...process.env, NO_COLOR: '1', MESH_SIMULATION_HOSTS: isolated ? '0' : HOSTS}
  const cli = (a, timeout = 300_000) => execFileSync(process.execPath, [CLI, ...a, '-f', file], {cwd: dir, env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe']})
  current = {dir, file}
  const result = {shape, n, mode, depth: mesh.depth}
  try {
    let t0 = performance.now()
    try {
      cli(['up', '-d'])
    } catch (e) {
      throw new Error(`mesh up failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
    }
    result.upS = (performance.now() - t0) / 1000
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
    const url = state.ingressUrl.replace(/\/$/, '') + mesh.path
    const first = await traced(url)
    result.firstMs = first.ms
    const client = connect(meshPaths(dir))
    first.spans = await client.trace(first.traceId)
    // Under the trace store's sampling rate (500 spans a second), so it keeps every trace: the
    // replay needs each instance's every request.
    const gapMs = Math.max(20, (1000 * first.spans.length) / 350)
    const steady = []
    // The JIT's warm-up, which `mesh up`'s own is too short for: the first ~100 requests cost
    // ~1.7× the CPU per hop of later ones. Marked as the mesh's warm-up, so the instances
    // draw them from their warm-up stream and the replay below stays aligned.
    for (let i = 0; i < WARM; i++) await traced(url, WARM_UP_TRACESTATE)
    const pids = processTree(state.daemon.pid)
    const cpu = () => pids.reduce((sum, pid) => sum + (alive(pid) ? cpuMicros(pid) : 0), 0)
    // The mesh's CPU when no request passes (health checks, timers), over 2 s: taken off the steady window's.
    const idle0 = [cpu(), cpuMicros(state.daemon.pid), performance.now()]
    await new Promise((r) => setTimeout(r, 2_000))
    const idleRate = [(cpu() - idle0[0]) / (performance.now() - idle0[2]), (cpuMicros(state.daemon.pid) - idle0[1]) / (performance.now() - idle0[2])]
    const daemonCpu0 = cpuMicros(state.daemon.pid)
    const cpu0 = cpu()
    const window0 = performance.now()
    for (let i = 0; i < STEADY; i++) {
      await new Promise((r) => setTimeout(r, gapMs))
      steady.push(await traced(url))
    }
    result.steadyMs = median(steady.map((s) => s.ms))
    const windowMs = performance.now() - window0
    const steadyCpu = cpu() - cpu0 - idleRate[0] * windowMs
    const steadyDaemonCpu = cpuMicros(state.daemon.pid) - daemonCpu0 - idleRate[1] * windowMs
    Object.assign(result, memory(state.daemon.pid))
    const config = await loadConfig(file)
    const traces = [first]
    for (const t of steady) traces.push({...t, spans: await client.trace(t.traceId)})
    const hops = perHop(traces, config)
    if (process.env.BENCH_DEBUG) dump(traces.at(-1).spans)
    const {offsets} = hops.pop()
    result.offsets = offsets
    result.firstHops = hops[0].hops
    const served = traces.slice(1).reduce((sum, t) => sum + t.spans.filter((s) => s.kind === 'server' && s.instance).length, 0)
    result.cpuUsPerHop = steadyCpu / served
    result.daemonCpuUsPerHop = steadyDaemonCpu / served
    result.hopMs = median(hops.slice(1).map((h) => h.perHopMs))
    result.hops = median(hops.slice(1).map((h) => h.hops))
    t0 = performance.now()
    cli(['down'])
    current = undefined
    result.downS = (performance.now() - t0) / 1000
  } finally {
    cleanupSync()
    current = undefined
    rmSync(dir, {recursive: true, force: true})
  }
  return result
}

// ---- report ----

const METRICS = [
  ['RSS MB', (r) => r.rssMb, 0],
  ['PSS MB', (r) => r.pssMb, 0],
  ['procs', (r) => r.processes, 0],
  ['up -d s', (r) => r.upS, 2],
  ['first ms', (r) => r.firstMs, 0],
  ['steady ms', (r) => r.steadyMs, 1],
  ['hop ms', (r) => r.hopMs, 3],
  ['CPU µs/hop', (r) => r.cpuUsPerHop, 0],
  ['down s', (r) => r.downS, 2],
]

function report(results) {
  const rows = []
  for (const shape of SHAPES) for (const n of SIZES) {
    const h = results.find((r) => r.shape === shape && r.n === n && r.mode === 'hosted')
    const i = results.find((r) => r.shape === shape && r.n === n && r.mode === 'isolated')
    const label = `${shape} ${n}` + (h ? ` (depth ${h.depth})` : '')
    const cells = (r) => (r.skipped ? METRICS.map(() => 'skipped') : METRICS.map(([, get, d]) => fmt.f(get(r), d)))
    if (h) rows.push([label, 'hosted', ...cells(h)])
    if (i) rows.push([h ? '' : label, 'isolated', ...cells(i)])
    if (h && i && !i.skipped) rows.push(['', 'hosted ÷ isolated', ...METRICS.map(([, get]) => fmt.x(get(h) / get(i)))])
  }
  console.log(table(['mesh (N services)', 'mode', ...METRICS.map(([name]) => name)], rows))
  console.log('')
  console.log(`hosted = MESH_SIMULATION_HOSTS=${HOSTS}; isolated = simulate.isolated: true (a process per instance). RSS/PSS: daemon + all its descendants.`)
  console.log(`chains are at most ${MAX_DEPTH} deep (N > ${MAX_DEPTH}: several chains, the first measured); hop = (trace − simulated latencies drawn on its critical path) / hops, median of ${STEADY} requests one at a time, ≥ 20 ms apart (under the trace store's sampling rate).`)
  for (const r of results) if (r.offsets?.length) console.log(`note: ${r.shape} ${r.n} ${r.mode}: instances whose draws were shifted by requests before the first: ${r.offsets.slice(0, 5).join(', ')}${r.offsets.length > 5 ? ', …' : ''}`)
  targets(results)
}

function targets(results) {
  const find = (shape, n) => results.find((r) => r.shape === shape && r.n === n && r.mode === 'hosted' && !r.skipped)
  const lines = []
  const rss = find('chain', 200) ?? find('tree', 200)
  if (rss) lines.push(`  200 simulated instances < 1 GB RSS: ${fmt.f(rss.rssMb, 0)} MB (${rss.shape}) → ${rss.rssMb < 1024 ? 'met' : 'NOT met'}`)
  const up = [find('chain', 100), find('tree', 100)].filter(Boolean)
  for (const r of up) lines.push(`  mesh up -d of 100 services < 5 s: ${fmt.f(r.upS, 2)} s (${r.shape}) → ${r.upS < 5 ? 'met' : 'NOT met'}`)
  const deep = results.filter((r) => r.shape === 'chain' && r.mode === 'hosted' && r.depth === MAX_DEPTH)
  for (const r of deep) lines.push(`  first request through a 40-deep chain < 0.5 s: ${fmt.f(r.firstMs, 0)} ms (chain ${r.n}) → ${r.firstMs < 500 ? 'met' : 'NOT met'}`)
  for (const r of results.filter((x) => x.mode === 'hosted' && !x.skipped)) lines.push(`  overhead per hop ≤ 0.5 ms: ${fmt.f(r.hopMs, 3)} ms (${r.shape} ${r.n}) → ${r.hopMs <= 0.5 ? 'met' : 'NOT met'}`)
  if (lines.length) console.log('\ntargets (issue 23, hosted):\n' + lines.join('\n'))
}

async function main() {
  const m = machine()
  console.log(`meshsim scale benchmark — ${new Date().toISOString()}`)
  console.log(`machine: ${m.cores} cores (${m.cpu}), ${m.memGb} GB, ${m.platform}, node ${m.node}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  const results = []
  for (const shape of SHAPES) for (const n of SIZES) for (const mode of ['hosted', 'isolated']) {
    if (mode === 'isolated' && n > MAX_ISOLATED) {
      results.push({shape, n, mode, skipped: true})
      continue
    }
    log(`${shape} ${n} ${mode}: mesh up -d …`)
    const r = await one(shape, n, mode)
    log(`  up ${fmt.f(r.upS, 2)} s, first ${fmt.f(r.firstMs, 0)} ms, steady ${fmt.f(r.steadyMs, 1)} ms, ${fmt.f(r.hopMs, 3)} ms/hop over ${r.hops} hops (CPU ${fmt.f(r.cpuUsPerHop, 0)} µs/hop, daemon ${fmt.f(r.daemonCpuUsPerHop, 0)}), RSS ${fmt.f(r.rssMb, 0)} MB (PSS ${fmt.f(r.pssMb, 0)}) in ${r.processes} processes, down ${fmt.f(r.downS, 2)} s`)
    results.push(r)
  }
  console.log('')
  report(results)
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({machine: m, hosts: HOSTS, results}, null, 2))
}

await main()
