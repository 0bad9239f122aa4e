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
// Env knobs: BENCH_FIDELITY_RPS (100), BENCH_FIDELITY_SECONDS (60), BENCH_FIDELITY_WARMUP (10),
// BENCH_FIDELITY_SIM_SECONDS (600), BENCH_FIDELITY_SEEDS (5), BENCH_FIDELITY_RUNS (1: real runs,
// each compared with the one sim), BENCH_FIDELITY_TOLERANCE (0.15), BENCH_FIDELITY_SIM_FLAGS (extra
// `mesh sim` flags, e.g. "--hop-latency 0.4ms"), BENCH_JSON (raw results there).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {alive, cpuMicros, fmt, machine, machineCpu, REPO, table} from './lib.js'

const RPS = Number(process.env.BENCH_FIDELITY_RPS ?? 100)
const SECONDS = Number(process.env.BENCH_FIDELITY_SECONDS ?? 60)
const WARMUP = Number(process.env.BENCH_FIDELITY_WARMUP ?? 10)
const SIM_SECONDS = Number(process.env.BENCH_FIDELITY_SIM_SECONDS ?? 600)
const SEEDS = Number(process.env.BENCH_FIDELITY_SEEDS ?? 5)
const RUNS = Number(process.env.BENCH_FIDELITY_RUNS ?? 1)
const TOLERANCE = Number(process.env.BENCH_FIDELITY_TOLERANCE ?? 0.15)
const SIM_FLAGS = (process.env.BENCH_FIDELITY_SIM_FLAGS ?? '').split(/\s+/).filter(Boolean)
const CLI = path.join(REPO, 'bin', 'run.js')
// Seconds of quiet between the warm-up and the measured load, so the stat window holds only the latter.
const GAP_S = 3

const log = (s) => process.stderr.write(s + '\n')
const env = {...process.env, NO_COLOR: '1'}

function cli(dir, args, timeout = 120_000) {
  try {
    return execFileSync(process.execPath, [CLI, ...args], {cwd: dir, encoding: 'utf8', timeout, env, stdio: ['ignore', 'pipe', 'pipe']})
  } catch (e) {
    throw new Error(`mesh ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

let upDir // the directory of the mesh that is up, for the cleanup
function downSync() {
  if (!upDir) return
  const dir = upDir
  upDir = undefined
  try {
    cli(dir, ['down'], 40_000)
  } catch {
    // Last resort: the daemon and the children recorded in state.json, by process group.
    try {
      const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
      for (const c of state.children ?? []) if (c.pgid) try { process.kill(-c.pgid, 'SIGKILL') } catch {}
      if (state.daemon?.pid && alive(state.daemon.pid)) process.kill(state.daemon.pid, 'SIGKILL')
    } catch {}
  }
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-fidelity-'))
process.on('exit', () => {
  downSync()
  rmSync(dir, {recursive: true, force: true})
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130))

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const loadArgs = (seconds) => ['load', 'ingress', '--rps', String(RPS), '--duration', `${seconds}s`, '--arrivals', 'poisson']

/** One real run: up, warm-up, measured load, stat, down. Per service {requests, p50, p99}. */
async function realRun(run) {
  upDir = dir
  const up = JSON.parse(cli(dir, ['up', '-d', '--json']))
  try {
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
    const pids = [...new Set([state.daemon.pid, ...(state.children ?? []).map((c) => c.pid)].filter(Boolean))]
    const meshCpu = () => pids.reduce((sum, pid) => { try { return sum + cpuMicros(pid) } catch { return sum } }, 0)
    log(`  run ${run + 1}: mesh up (ingress ${up.ingress.url}); warm-up ${WARMUP} s at ${RPS} req/s …`)
    if (WARMUP > 0) cli(dir, loadArgs(WARMUP), (WARMUP + 60) * 1000)
    await sleep(GAP_S * 1000)
    log(`  run ${run + 1}: measured load ${SECONDS} s at ${RPS} req/s, poisson …`)
    const m0 = machineCpu()
    const c0 = meshCpu()
    const t0 = performance.now()
    const load = JSON.parse(cli(dir, [...loadArgs(SECONDS), '--json'], (SECONDS + 60) * 1000))
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

function simRun(seconds, seed) {
  const out = JSON.parse(cli(dir, ['sim', '--rps', String(RPS), '--duration', `${seconds}s`, '--arrivals', 'poisson', '--seed', String(seed), ...SIM_FLAGS, '--json'], 300_000))
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
  `shop template; real: mesh up, ${WARMUP} s warm-up, then ${RPS} req/s poisson for ${SECONDS} s, mesh stat over that window (${RUNS} run(s)); ` +
    `sim: mesh sim --rps ${RPS} --arrivals poisson --duration ${SIM_SECONDS}s${SIM_FLAGS.length ? ' ' + SIM_FLAGS.join(' ') : ''}`,
)
cli(dir, ['init', '--template', 'shop'])
const file = path.join(dir, 'mesh.yaml')
// Never a fixed port: the template's 8000 may be taken (another mesh, another benchmark).
writeFileSync(file, readFileSync(file, 'utf8').replace(/^(\s+port:\s*)8000\b/m, '$10'))

const reals = []
for (let run = 0; run < RUNS; run++) reals.push(await realRun(run))
log(`mesh sim: ${SIM_SECONDS} s, and ${SEEDS} runs of ${SECONDS} s for the spread a run that long has …`)
const sim = simRun(SIM_SECONDS, 1)
const short = Array.from({length: SEEDS}, (_, i) => simRun(SECONDS, i + 1))

const names = Object.keys(sim)
const rows = []
const verdicts = []
for (const name of names) {
  const s = sim[name]
  const realP50 = median(reals.map((r) => r.services[name]?.p50 ?? NaN))
  const realP99 = median(reals.map((r) => r.services[name]?.p99 ?? NaN))
  const r50 = realP50 / s.p50
  const r99 = realP99 / s.p99
  // How far a sim run as long as the real one strays from the long run: sampling noise alone.
  const spread = (q) => Math.max(...short.map((x) => Math.abs(x[name][q] / s[q] - 1)))
  verdicts.push(within(r50), within(r99))
  rows.push([
    name,
    fmt.int(median(reals.map((r) => r.services[name]?.requests ?? 0))),
    fmt.f(realP50, 1),
    fmt.f(s.p50, 1),
    fmt.x(r50),
    fmt.signed(realP50 - s.p50, 1),
    within(r50) ? 'yes' : 'NO',
    fmt.f(realP99, 1),
    fmt.f(s.p99, 1),
    fmt.x(r99),
    within(r99) ? 'yes' : 'NO',
    `±${fmt.f(100 * spread('p50'), 0)}% / ±${fmt.f(100 * spread('p99'), 0)}%`,
  ])
}
console.log('')
console.log(
  table(
    ['service', 'real calls', 'real p50 ms', 'sim p50 ms', 'real ÷ sim', 'real − sim ms', `p50 within ${fmt.f(100 * TOLERANCE, 0)}%`, 'real p99 ms', 'sim p99 ms', 'real ÷ sim', `p99 within ${fmt.f(100 * TOLERANCE, 0)}%`, `sim ${SECONDS} s spread p50 / p99`],
    rows,
  ),
)
console.log('')
if (RUNS > 1) {
  console.log(`real runs (p50 / p99 ms per service; median above):`)
  for (const r of reals) console.log(`  run ${r.run + 1}: ` + names.map((n) => `${n} ${fmt.f(r.services[n]?.p50, 1)}/${fmt.f(r.services[n]?.p99, 1)}`).join(', '))
}
for (const r of reals) {
  console.log(
    `run ${r.run + 1}: load client p50 ${fmt.f(r.load.p50, 1)} ms, p99 ${fmt.f(r.load.p99, 1)} ms, success ${fmt.f(100 * r.load.successRate, 2)}%; ` +
      `mesh CPU ${fmt.f(r.meshCpuMsPerReq, 2)} ms per ingress request; machine busy ${fmt.f(100 * r.busy, 0)}% (all cores, everything); load average ${fmt.f(r.loadavg, 2)}`,
  )
}
console.log(`real = mesh stat (source-reported: each call as the caller's sidecar saw it); sim = mesh sim's client spans, the same definition.`)
console.log(`spread = the largest deviation of ${SEEDS} sim runs of ${SECONDS} s (seeds 1–${SEEDS}) from the ${SIM_SECONDS} s run: what sampling alone moves a run that long.`)
const met = verdicts.filter(Boolean).length
console.log(`target (issue #24 item 5): every service's p50 and p99 within ${fmt.f(100 * TOLERANCE, 0)}% → ${met} of ${verdicts.length} figures within`)
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({machine: mach, rps: RPS, seconds: SECONDS, simSeconds: SIM_SECONDS, simFlags: SIM_FLAGS, reals, sim, short}, null, 2))
