// `npm run bench -- warm-up` (or `node bench/warm-up.js` after a build): is a mesh warm
// when `mesh up -d` returns? Issue #23 item 3. For each mode, BENCH_WARM_RUNS times:
//
//   mesh init --template shop (in a temp dir; ingress port 0) → mesh up -d (timed) →
//   at once an open-loop 300 req/s load at the ingress for 10 s (src/sim/load runLoad:
//   request i is due at i/300 s and its latency runs from that INTENDED time, so a
//   stalled mesh cannot hide by slowing the sender) → mesh down
//
// and prints p50/p99 of the requests due in 0–5 s against those due in 5–10 s, their
// ratio (target: first-5 s p99 ≤ 1.5× the next 5 s), and per-second windows. The load
// generator's own code is warmed first against a local server, so what is measured is
// the mesh's warm-up, not the benchmark's.
//
// Modes (BENCH_WARM_MODES, comma-separated; default "process,hosts"):
//   process  one process per simulated instance (MESH_SIMULATION_HOSTS=0)
//   hosts    shared simulation hosts (MESH_SIMULATION_HOSTS=1)
//   default  whatever the mesh does without the variable
// Env knobs: BENCH_WARM_RUNS (2), BENCH_WARM_RPS (300), BENCH_WARM_SECONDS (10),
// BENCH_WARM_PATH (/), BENCH_WARM_WINDOWS=1 (print the per-second table of every run),
// BENCH_NO_WARM_UP=1 (`mesh up -d --no-warm-up`: the mesh as it was before its warm-up step),
// BENCH_JSON (raw results there), BENCH_WARM_CPU_PROF=DIR (every process of the mesh writes a
// V8 CPU profile there at `mesh down`, and DIR/load-start.json the monotonic µs the load began
// at: what each process spent, second by second — see bench/warm-up-profiles.js).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {alive, cpuMicros, fmt, machine, processTree, REPO, table} from './lib.js'
import {runLoad} from '../dist/sim/load/load-generator.js'
import {LatencyHistogram} from '../dist/sim/telemetry/histogram.js'

const MODES = (process.env.BENCH_WARM_MODES ?? 'process,hosts').split(',').map((s) => s.trim()).filter(Boolean)
const RUNS = Number(process.env.BENCH_WARM_RUNS ?? 2)
const RPS = Number(process.env.BENCH_WARM_RPS ?? 300)
const SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 10)
const PATH = process.env.BENCH_WARM_PATH ?? '/'
const WINDOWS = process.env.BENCH_WARM_WINDOWS === '1'
const NO_WARM_UP = process.env.BENCH_NO_WARM_UP === '1'
const HOSTS_ENV = {process: '0', hosts: '1', default: undefined}
for (const m of MODES) if (!(m in HOSTS_ENV)) throw new Error(`BENCH_WARM_MODES: unknown mode ${m} (process, hosts, default)`)
const CLI = path.join(REPO, 'bin', 'run.js')

const log = (s) => process.stderr.write(s + '\n')
let current // {dir, env} of the mesh that is up, for the cleanup

function cli(dir, env, args, timeout = 120_000) {
  return execFileSync(process.execPath, [CLI, ...args], {cwd: dir, encoding: 'utf8', timeout, env, stdio: ['ignore', 'pipe', 'pipe']})
}

function downSync() {
  if (!current) return
  const {dir, env} = current
  current = undefined
  try {
    cli(dir, env, ['down'], 40_000)
  } catch {
    // Last resort: the daemon and the children recorded in state.json, by process group.
    try {
      const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
      for (const c of state.children ?? []) if (c.pgid) try { process.kill(-c.pgid, 'SIGKILL') } catch {}
      if (state.daemon?.pid && alive(state.daemon.pid)) try { process.kill(-state.daemon.pid, 'SIGKILL') } catch { process.kill(state.daemon.pid, 'SIGKILL') }
    } catch {}
  }
}
const dirs = []
process.on('exit', () => {
  downSync()
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130))

/** Windows of the run by intended send time: [0, half) and [half, end), and one per second. */
function windowsOf(seconds) {
  const half = new LatencyHistogram()
  const second = new LatencyHistogram()
  const perSecond = Array.from({length: Math.ceil(seconds)}, () => ({h: new LatencyHistogram(), errors: 0}))
  return {
    record(o) {
      // Uniform arrivals: request i is due i/RPS s after the start.
      const at = o.index / RPS
      ;(at < seconds / 2 ? half : second).record(o.latencyMs)
      const w = perSecond[Math.min(perSecond.length - 1, Math.floor(at))]
      w.h.record(o.latencyMs)
      if (o.error) w.errors++
    },
    summary() {
      const s = (h) => ({n: h.count, p50: h.percentile(0.5), p99: h.percentile(0.99), max: h.max()})
      return {first: s(half), second: s(second), perSecond: perSecond.map((w) => ({...s(w.h), errors: w.errors}))}
    },
  }
}

/** Runs the generator's code (runLoad, undici) against a local server first: its JIT is not the mesh's warm-up. */
async function warmTheGenerator() {
  const server = http.createServer((req, res) => {
    req.resume()
    res.end('ok')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  await runLoad({target: `http://127.0.0.1:${server.address().port}`, rps: RPS, durationMs: 1_500, path: PATH})
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

async function one(mode, run) {
  let profileDir
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-warm-'))
  dirs.push(dir)
  const env = {...process.env, NO_COLOR: '1'}
  if (HOSTS_ENV[mode] === undefined) delete env.MESH_SIMULATION_HOSTS
  else env.MESH_SIMULATION_HOSTS = HOSTS_ENV[mode]
  cli(dir, env, ['init', '--template', 'shop'])
  const file = path.join(dir, 'mesh.yaml')
  // Never a fixed port: the template's 8000 may be taken (another mesh, another benchmark).
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^(\s+port:\s*)8000\b/m, '$10'))
  if (process.env.BENCH_WARM_CPU_PROF) {
    const out = path.join(process.env.BENCH_WARM_CPU_PROF, `${mode}-${run}`)
    // Node refuses --cpu-prof in NODE_OPTIONS: a preload starts the profiler in each process.
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import=${path.join(REPO, 'bench', 'cpu-prof-preload.js')}`.trim()
    env.CPU_PROF_DIR = out
    profileDir = out
  }
  const t0 = performance.now()
  current = {dir, env}
  let upOutput
  try {
    upOutput = cli(dir, env, ['up', '-d', '--json', ...(NO_WARM_UP ? ['--no-warm-up'] : [])])
  } catch (e) {
    throw new Error(`mesh up -d failed (${mode}):\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
  const upMs = performance.now() - t0
  const ingress = JSON.parse(upOutput).ingress.url
  const w = windowsOf(SECONDS)
  // CPU the mesh's processes (daemon, instances, hosts) use per second of the load: a cold
  // process spends more per request. Little disturbed by other load on the machine, unlike latency.
  const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
  // Each recorded process with the ones below it (an instance's command runs under `sh -c`);
  // the daemon's own CPU alone, its children being the other entries.
  const recorded = [...new Set([state.daemon.pid, ...(state.children ?? []).map((c) => c.pid)].filter(Boolean))]
  const groups = recorded.map((pid) => (pid === state.daemon.pid ? [pid] : processTree(pid)))
  const groupCpu = (group) => group.reduce((sum, pid) => { try { return sum + cpuMicros(pid) } catch { return sum } }, 0)
  const meshCpu = () => groups.reduce((sum, group) => sum + groupCpu(group), 0)
  const names = new Map([[state.daemon.pid, 'daemon'], ...(state.children ?? []).map((c) => [c.pid, c.instance])])
  const perGroup0 = groups.map(groupCpu)
  const cpuSamples = [meshCpu()]
  const sampler = setInterval(() => cpuSamples.push(meshCpu()), 1000)
  if (profileDir) {
    const {mkdirSync} = await import('node:fs')
    mkdirSync(profileDir, {recursive: true})
    writeFileSync(path.join(profileDir, 'load-start.json'), JSON.stringify({monotonicUs: Number(process.hrtime.bigint() / 1000n), upMs}))
  }
  const result = await runLoad({target: ingress, rps: RPS, durationMs: SECONDS * 1000, path: PATH, timeoutMs: 10_000, onResponse: (o) => w.record(o)})
  clearInterval(sampler)
  const perProcess = groups.map((group, i) => [names.get(group[0]) ?? String(group[0]), (groupCpu(group) - perGroup0[i]) / 1000 / (RPS * SECONDS)])
  const t1 = performance.now()
  downSync()
  const downMs = performance.now() - t1
  const errors = Object.values(result.errors).reduce((a, b) => a + b, 0)
  const s = w.summary()
  s.perSecond.forEach((x, i) => (x.cpuMsPerReq = cpuSamples[i + 1] === undefined ? NaN : (cpuSamples[i + 1] - cpuSamples[i]) / 1000 / RPS))
  const cpuOf = (from, to) => (cpuSamples[Math.min(to, cpuSamples.length - 1)] - cpuSamples[from]) / 1000 / (RPS * (Math.min(to, cpuSamples.length - 1) - from))
  s.first.cpuMsPerReq = cpuOf(0, SECONDS / 2)
  s.second.cpuMsPerReq = cpuOf(SECONDS / 2, SECONDS)
  const ratio = s.first.p99 / s.second.p99
  log(
    `  ${mode} run ${run + 1}: up ${fmt.f(upMs / 1000, 1)} s; 0–${SECONDS / 2} s p50 ${fmt.f(s.first.p50, 1)} / p99 ${fmt.f(s.first.p99, 1)} ms; ` +
      `${SECONDS / 2}–${SECONDS} s p50 ${fmt.f(s.second.p50, 1)} / p99 ${fmt.f(s.second.p99, 1)} ms; p99 ratio ${fmt.x(ratio)}; mesh CPU ${fmt.f(s.first.cpuMsPerReq, 2)} / ${fmt.f(s.second.cpuMsPerReq, 2)} ms/req; ${errors} errors${errors ? ` ${JSON.stringify(result.errors)}` : ""}; load avg ${os.loadavg()[0].toFixed(2)}`,
  )
  if (WINDOWS) {
    log(perSecondTable(s.perSecond))
    log(`  CPU ms per request by process: ${perProcess.map(([n, ms]) => `${n} ${fmt.f(ms, 2)}`).join(', ')}`)
  }
  return {mode, run, upMs, downMs, errors, errorKinds: result.errors, ...s, ratio, perProcess}
}

function perSecondTable(perSecond) {
  return table(
    ['second', 'n', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'mesh CPU ms/req'],
    perSecond.map((w, i) => [`${i}–${i + 1}`, w.n, fmt.f(w.p50, 1), fmt.f(w.p99, 1), fmt.f(w.max, 1), w.errors, fmt.f(w.cpuMsPerReq, 2)]),
  )
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const m = machine()
console.log(`meshsim warm-up benchmark — ${new Date().toISOString()}`)
console.log(`machine: ${m.cores} cores (${m.cpu}), ${m.memGb} GB, node ${m.node}; load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`)
console.log(`shop template, mesh up -d${NO_WARM_UP ? ' --no-warm-up' : ''}, then at once ${RPS} req/s open loop for ${SECONDS} s at the ingress ${PATH} (latency from intended send time); ${RUNS} run(s) per mode`)
log('warming the load generator against a local server …')
await warmTheGenerator()
const results = []
for (const mode of MODES) for (let run = 0; run < RUNS; run++) results.push(await one(mode, run))

const rows = MODES.map((mode) => {
  const rs = results.filter((r) => r.mode === mode)
  const med = (f) => median(rs.map(f))
  return [
    mode,
    `${fmt.f(med((r) => r.upMs) / 1000, 1)} s`,
    fmt.f(med((r) => r.first.p50), 1),
    fmt.f(med((r) => r.first.p99), 1),
    fmt.f(med((r) => r.second.p50), 1),
    fmt.f(med((r) => r.second.p99), 1),
    fmt.x(med((r) => r.ratio)),
    rs.map((r) => fmt.x(r.ratio)).join(' '),
    `${fmt.f(med((r) => r.first.cpuMsPerReq), 2)} / ${fmt.f(med((r) => r.second.cpuMsPerReq), 2)}`,
    rs.reduce((n, r) => n + r.errors, 0),
  ]
})
console.log('')
console.log(
  table(
    ['mode', 'mesh up -d', `0–${SECONDS / 2} s p50 ms`, 'p99 ms', `${SECONDS / 2}–${SECONDS} s p50 ms`, 'p99 ms', 'p99 ratio (median)', 'per run', 'mesh CPU ms/req, 1st / 2nd half', 'errors'],
    rows,
  ),
)
console.log('mesh CPU: utime+stime of the daemon and every process it started, per request due in the window (cold code costs more).')
console.log(`\nmedians over runs; target (issue #23 item 3): first-${SECONDS / 2} s p99 ≤ 1.5× the next ${SECONDS / 2} s.`)
for (const mode of MODES) {
  const last = results.filter((r) => r.mode === mode).at(-1)
  console.log(`\n${mode}, last run, per second of intended send time:`)
  console.log(perSecondTable(last.perSecond))
}
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({machine: m, rps: RPS, seconds: SECONDS, results}, null, 2))
if (results.some((r) => r.errors > 0)) process.exitCode = 1
