// `npm run bench -- sim-fidelity`: does `mesh sim` say what the running mesh does? Issue #24
// item 5: the shop template at 100 req/s, each service's p50 and p99 from `mesh sim` and from
// the real mesh (`mesh up`, `mesh load`, `mesh stat`) within 15% of each other.
//
//   mesh init --template shop (temp dir, ingress port 0) → mesh up -d →
//   warm-up: mesh load ingress at the rate for BENCH_FIDELITY_WARMUP s → a few idle seconds →
//   measured: mesh load ingress --rps R --duration N --arrivals poisson →
//   mesh stat --json --window (the measured load only) → mesh down →
//   mesh sim --rps R --duration BENCH_FIDELITY_SIM_SECONDS --arrivals poisson (same file, same shape)
//
// Both sides report the same thing: a service's response time as its callers' sidecars saw each
// call (source-reported in `mesh stat`; the client spans in `mesh sim`), retries included, from
// the caller's sidecar receiving the request to the end of the answer. The sim's run is long
// (10 virtual minutes by default) so its own sampling noise is negligible; a real run of N s has
// sampling noise of its own, shown as the spread of BENCH_FIDELITY_SEEDS sim runs of N s each.
//
// What virtual time leaves out is the mesh's own time per hop (the sidecars, loopback, the
// instance's HTTP server). The sim runs twice: without it, and with `--hop-latency H`, where H is
// BENCH_FIDELITY_HOP: a duration, or `fit` (the default): the median over the leaf services
// (one hop each, no calls) of real p50 − sim p50 — one figure from three leaf p50s, then
// checked against all twelve.
//
// Env knobs: BENCH_FIDELITY_RPS (100), BENCH_FIDELITY_SECONDS (60), BENCH_FIDELITY_WARMUP (10),
// BENCH_FIDELITY_SIM_SECONDS (600), BENCH_FIDELITY_SEEDS (5), BENCH_FIDELITY_RUNS (1: real runs,
// their median compared with the sim), BENCH_FIDELITY_TOLERANCE (0.15), BENCH_FIDELITY_HOP (fit),
// BENCH_FIDELITY_NICE (e.g. -10: every thread of the mesh and the load client at this priority,
// so other work on a shared machine takes less from them; needs root), BENCH_JSON (raw results).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {cpuMicros, fmt, forceMeshDown, machine, machineCpu, REPO, table} from './lib.js'
import {parseConfig} from '../dist/sim/config/load-config.js'
import {parseDuration} from '../dist/sim/config/duration.js'
import {modelOf} from '../dist/sim/virtual/simulation.js'

const RPS = Number(process.env.BENCH_FIDELITY_RPS ?? 100)
const SECONDS = Number(process.env.BENCH_FIDELITY_SECONDS ?? 60)
const WARMUP = Number(process.env.BENCH_FIDELITY_WARMUP ?? 10)
const SIM_SECONDS = Number(process.env.BENCH_FIDELITY_SIM_SECONDS ?? 600)
const SEEDS = Number(process.env.BENCH_FIDELITY_SEEDS ?? 5)
const RUNS = Number(process.env.BENCH_FIDELITY_RUNS ?? 1)
const TOLERANCE = Number(process.env.BENCH_FIDELITY_TOLERANCE ?? 0.15)
const HOP = process.env.BENCH_FIDELITY_HOP ?? 'fit'
const NICE = process.env.BENCH_FIDELITY_NICE === undefined ? undefined : Number(process.env.BENCH_FIDELITY_NICE)
const CLI = path.join(REPO, 'bin', 'run.js')
// Seconds of quiet between the warm-up and the measured load, so the stat window holds only the latter.
const GAP_S = 3

const log = (s) => process.stderr.write(s + '\n')
const env = {...process.env, NO_COLOR: '1'}

function cli(dir, args, timeout = 120_000, nice = undefined) {
  const [cmd, argv] = nice === undefined ? [process.execPath, [CLI, ...args]] : ['nice', ['-n', String(nice), process.execPath, CLI, ...args]]
  try {
    return execFileSync(cmd, argv, {cwd: dir, encoding: 'utf8', timeout, env, stdio: ['ignore', 'pipe', 'pipe']})
  } catch (e) {
    throw new Error(`mesh ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

let upDir // the directory of the mesh that is up, for the cleanup
function downSync() {
  if (!upDir) return
  const dir = upDir
  upDir = undefined
  forceMeshDown(dir, path.join(dir, 'mesh.yaml'), 40_000)
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-fidelity-'))
process.on('exit', () => {
  downSync()
  rmSync(dir, {recursive: true, force: true})
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130))

/** Every thread of `pid` (nice is per thread on Linux: a worker's wake-ups too) to `nice`. */
function renice(pid, nice) {
  for (const tid of readdirSync(`/proc/${pid}/task`)) execFileSync('renice', ['-n', String(nice), '-p', tid], {stdio: 'ignore'})
}

/** The processes of these process groups (a command runs through a shell: the service is the shell's child). */
function inGroups(pgids) {
  const out = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (pgids.has(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]))) out.push(Number(name))
    } catch {}
  }
  return out
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const loadArgs = (seconds) => ['load', 'ingress', '--rps', String(RPS), '--duration', `${seconds}s`, '--arrivals', 'poisson']

/** One real run: up, warm-up, measured load, stat, down. Per service {requests, p50, p99}. */
async function realRun(run) {
  upDir = dir
  const up = JSON.parse(cli(dir, ['up', '-d', '--json']))
  try {
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
    const pids = [...new Set([state.daemon.pid, ...(state.children ?? []).map((c) => c.pid)].filter(Boolean))]
    if (NICE !== undefined) {
      const groups = new Set((state.children ?? []).map((c) => c.pgid).filter(Boolean))
      for (const pid of new Set([...pids, ...inGroups(groups)])) renice(pid, NICE)
    }
    const meshCpu = () => pids.reduce((sum, pid) => { try { return sum + cpuMicros(pid) } catch { return sum } }, 0)
    log(`  run ${run + 1}: mesh up (ingress ${up.ingress.url}); warm-up ${WARMUP} s at ${RPS} req/s …`)
    if (WARMUP > 0) cli(dir, loadArgs(WARMUP), (WARMUP + 60) * 1000)
    await sleep(GAP_S * 1000)
    log(`  run ${run + 1}: measured load ${SECONDS} s at ${RPS} req/s, poisson …`)
    const m0 = machineCpu()
    const c0 = meshCpu()
    const t0 = performance.now()
    const load = JSON.parse(cli(dir, [...loadArgs(SECONDS), '--json'], (SECONDS + 60) * 1000, NICE))
    // From the load's start to now (its drain included), a whole second more for the slot it began in.
    const windowS = Math.ceil((performance.now() - t0) / 1000) + 1
    const stat = JSON.parse(cli(dir, ['stat', '--json', '--window', `${windowS}s`]))
    const m1 = machineCpu()
    const meshCpuMs = (meshCpu() - c0) / 1000
    // Other processes' share of the machine while the load ran: what the real side competed with.
    const busy = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)
    const services = Object.fromEntries(stat.map((r) => [r.service, {requests: r.requests, p50: r.p50, p99: r.p99, successRate: r.successRate}]))
    return {run, load: {requests: load.requests, p50: load.latency.p50, p99: load.latency.p99, successRate: load.successRate}, services, busy, meshCpuMsPerReq: meshCpuMs / Math.max(1, load.requests), loadavg: os.loadavg()[0]}
  } finally {
    downSync()
  }
}

function simRun(seconds, seed, hopMs = 0) {
  const out = JSON.parse(cli(dir, ['sim', '--rps', String(RPS), '--duration', `${seconds}s`, '--arrivals', 'poisson', '--seed', String(seed), '--hop-latency', `${hopMs.toFixed(3)}ms`, '--json'], 300_000))
  return Object.fromEntries(out.services.map((s) => [s.service, {requests: s.requests, p50: s.p50, p99: s.p99, successRate: s.successRate}]))
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const within = (ratio) => Math.abs(ratio - 1) <= TOLERANCE

const mach = machine()
console.log(`mesh sim fidelity — ${new Date().toISOString()}`)
console.log(`machine: ${mach.cores} cores (${mach.cpu}), node ${mach.node}; load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
console.log(
  `shop template; real: mesh up, ${WARMUP} s warm-up, then ${RPS} req/s poisson for ${SECONDS} s, mesh stat over that window (${RUNS} run(s)` +
    `${NICE === undefined ? '' : `, mesh and load client at nice ${NICE}`}); sim: mesh sim --rps ${RPS} --arrivals poisson --duration ${SIM_SECONDS}s`,
)
cli(dir, ['init', '--template', 'shop'])
const file = path.join(dir, 'mesh.yaml')
// Never a fixed port: the template's 8000 may be taken (another mesh, another benchmark).
writeFileSync(file, readFileSync(file, 'utf8').replace(/^(\s+port:\s*)8000\b/m, '$10'))
// The leaves: services whose every model makes no call, so a call to one is one hop.
const {config} = parseConfig(readFileSync(file, 'utf8'), file, {})
const leaves = config.services.filter((s) => s.versions.every((v) => (modelOf(s, v)?.calls.length ?? 1) === 0)).map((s) => s.name)

const reals = []
for (let run = 0; run < RUNS; run++) reals.push(await realRun(run))
const real = (name, q) => median(reals.map((r) => r.services[name]?.[q] ?? NaN))
log(`mesh sim: ${SIM_SECONDS} s without hop latency …`)
const bare = simRun(SIM_SECONDS, 1)
const hopMs = HOP === 'fit' ? Math.round(1000 * Math.max(0, median(leaves.map((n) => real(n, 'p50') - bare[n].p50)))) / 1000 : parseDuration(HOP)
if (hopMs === undefined) throw new Error(`BENCH_FIDELITY_HOP: "${HOP}" is neither fit nor a duration`)
log(`mesh sim: ${SIM_SECONDS} s with --hop-latency ${fmt.f(hopMs, 3)}ms, and ${SEEDS} runs of ${SECONDS} s for the spread a run that long has …`)
const sim = simRun(SIM_SECONDS, 1, hopMs)
const short = Array.from({length: SEEDS}, (_, i) => simRun(SECONDS, i + 1, hopMs))

const names = Object.keys(sim)
const rows = []
const verdicts = {bare: [], hop: []}
for (const name of names) {
  const s = sim[name]
  const b = bare[name]
  const realP50 = real(name, 'p50')
  const realP99 = real(name, 'p99')
  // How far a sim run as long as the real one strays from the long run: sampling noise alone.
  const spread = (q) => Math.max(...short.map((x) => Math.abs(x[name][q] / s[q] - 1)))
  const cell = (r) => `${fmt.x(r)} ${within(r) ? 'yes' : 'NO'}`
  verdicts.bare.push(within(realP50 / b.p50), within(realP99 / b.p99))
  verdicts.hop.push(within(realP50 / s.p50), within(realP99 / s.p99))
  rows.push([
    name + (leaves.includes(name) ? ' (leaf)' : ''),
    fmt.int(real(name, 'requests')),
    fmt.f(realP50, 1),
    fmt.f(b.p50, 1),
    cell(realP50 / b.p50),
    fmt.f(s.p50, 1),
    cell(realP50 / s.p50),
    fmt.f(realP99, 1),
    fmt.f(b.p99, 1),
    cell(realP99 / b.p99),
    fmt.f(s.p99, 1),
    cell(realP99 / s.p99),
    `±${fmt.f(100 * spread('p50'), 0)}% / ±${fmt.f(100 * spread('p99'), 0)}%`,
  ])
}
const hop = `hop ${fmt.f(hopMs, 2)}`
console.log('')
console.log(
  table(
    ['service', 'real calls', 'real p50 ms', 'sim p50', 'real ÷ sim', `sim ${hop}`, 'real ÷ sim', 'real p99 ms', 'sim p99', 'real ÷ sim', `sim ${hop}`, 'real ÷ sim', `sim ${SECONDS} s spread p50 / p99`],
    rows,
  ),
)
console.log('')
if (RUNS > 1) {
  console.log(`real runs (p50 / p99 ms per service; the median is above):`)
  for (const r of reals) console.log(`  run ${r.run + 1}: ` + names.map((n) => `${n} ${fmt.f(r.services[n]?.p50, 1)}/${fmt.f(r.services[n]?.p99, 1)}`).join(', '))
}
for (const r of reals) {
  console.log(
    `run ${r.run + 1}: load client p50 ${fmt.f(r.load.p50, 1)} ms, p99 ${fmt.f(r.load.p99, 1)} ms, success ${fmt.f(100 * r.load.successRate, 2)}%; ` +
      `mesh CPU ${fmt.f(r.meshCpuMsPerReq, 2)} ms per ingress request; machine busy ${fmt.f(100 * r.busy, 0)}% (all cores, everything); load average ${fmt.f(r.loadavg, 2)}`,
  )
}
console.log(`real = mesh stat (source-reported: each call as the caller's sidecar saw it); sim = mesh sim's client spans, the same definition.`)
console.log(
  `${hop} = mesh sim --hop-latency ${fmt.f(hopMs, 3)}ms` +
    (HOP === 'fit' ? `: the median of real p50 − sim p50 over the leaves (${leaves.join(', ')}), one hop each` : ''),
)
console.log(`spread = the largest deviation of ${SEEDS} sim runs of ${SECONDS} s (seeds 1–${SEEDS}) from the ${SIM_SECONDS} s run: what sampling alone moves a run that long.`)
const count = (v) => `${v.filter(Boolean).length} of ${v.length}`
console.log(`target (issue #24 item 5): every service's p50 and p99 within ${fmt.f(100 * TOLERANCE, 0)}% → without hop latency ${count(verdicts.bare)}, with ${hop} ms ${count(verdicts.hop)}`)
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({machine: mach, rps: RPS, seconds: SECONDS, simSeconds: SIM_SECONDS, hopMs, nice: NICE, reals, bare, sim, short}, null, 2))
