// What the daemon's per-request CPU would be without parts of the telemetry: runs a
// MeshDaemon in-process (as profile-daemon.js does) and, between closed-loop wrk (or
// Node) runs against the ingress, switches parts off by patching the live objects —
// no source is changed. Variants run interleaved, `--rounds` times; medians are shown.
//
//   node bench/what-if.js [--rounds 3] [--seconds 4] [--path /] [--only bare,full,min-stack]
//   THREADS=1 node bench/what-if.js …   also prints CPU per thread (main, and V8's GC/compiler workers)
//
// The machine's speed wanders by ±20% between runs of a few seconds; the minimum over
// rounds is the steadiest figure for comparing variants.
//
// bare        the yardstick: bench/bare-proxy.js (its own process, same core) — CPU × bare is against it
// full        as `mesh up` with the defaults (spans, metrics; access logs off)
// access-log  full plus access logs (`telemetry: {accessLog: true}`)
// no-store    full, but spans are not kept in the trace store (what keeping them costs, GC included)
// store-5k    full, but spans are kept in a 5,000-span store instead of the default 50,000
// no-metrics  full, but spans feed no metrics
// no-telemetry the data path's sink does nothing (no spans, metrics, access logs)
// bare-in-daemon  bench/bare-proxy.js's code, but listening inside this (the daemon's) process:
//             what the daemon's process (its heap, timers, other listeners) costs a bare hop
// bare-mesh-headers  the same, adding the headers a mesh call adds (x-forwarded-*, x-request-id,
//             traceparent; the serving instance on the response)
// min-stack   no telemetry and no policy layers: the data plane hands every request straight to
//             the upstream layer (first endpoint) — what the data plane's own plumbing costs
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {spawn} from 'node:child_process'
import {BENCH_DIR, CLK_TCK, cpuMicros, machine, machineCpu, meshYaml, pinned, startServer, stopChild, stopOnSignal, table, which, fmt, option as opt} from './lib.js'

const ROUNDS = Number(opt('--rounds', 3))
const SECONDS = Number(opt('--seconds', 4))
const PATH = opt('--path', '/')
const PIN = process.env.BENCH_PIN !== '0' && machine().cores >= 2 && which('taskset') !== undefined
if (PIN) {
  // This process is the daemon: put it beside the upstream on CPU 1, like the benchmark.
  try {
    (await import('node:child_process')).execFileSync('taskset', ['-p', '-c', '1', String(process.pid)], {stdio: 'ignore'})
  } catch {}
}

const {loadConfig} = await import('../dist/sim/config/load-config.js')
const {MeshDaemon} = await import('../dist/sim/control/daemon.js')
const {upstream: upstreamLayer} = await import('../dist/sim/proxy/upstream.js')
const {TraceStore} = await import('../dist/sim/telemetry/trace-store.js')
const {createBareProxy} = await import('./bare-proxy.js')

const threadsCpu = () => {
  let us = 0
  for (const t of readdirSync('/proc/self/task')) {
    const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    us += ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK
  }
  return us
}
/** CPU per thread name (V8's workers, libuv's pool): where the time off the main thread goes. */
const byThread = () => {
  const out = {}
  for (const t of readdirSync('/proc/self/task')) {
    const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8')
    const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    const key = t === String(process.pid) ? "main" : `${name}#${t}`
    out[key] = (out[key] ?? 0) + ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK
  }
  return out
}
const mainCpu = () => {
  const s = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK
}

function load(target) {
  const useWrk = which('wrk') && process.env.BENCH_CLIENT !== 'node'
  const [cmd, a] = useWrk
    ? pinned(PIN ? 0 : undefined, 'wrk', ['-t1', '-c64', `-d${SECONDS}s`, target])
    : pinned(PIN ? 0 : undefined, process.execPath, [path.join(BENCH_DIR, 'closed-loop.js'), JSON.stringify({target, connections: 64, warmupMs: 0, durationMs: SECONDS * 1000})])
  return new Promise((resolve, reject) => {
    let out = ''
    const child = spawn(cmd, a, {stdio: ['ignore', 'pipe', 'inherit']})
    child.stdout.on('data', (d) => (out += d))
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load exited ${code}`))
      const m = useWrk ? /(\d+) requests in/.exec(out) : /"requests":(\d+)/.exec(out)
      resolve(Number(m[1]))
    })
  })
}

const upstream = await startServer('upstream.js', {PORT: '0'}, PIN ? 1 : undefined)
const bare = await startServer('bare-proxy.js', {PORT: '0', UPSTREAM: `http://127.0.0.1:${upstream.port}`}, PIN ? 1 : undefined)
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-whatif-'))
let daemon
try {
  writeFileSync(path.join(dir, 'mesh.yaml'), meshYaml(upstream.port))
  daemon = new MeshDaemon(await loadConfig(path.join(dir, 'mesh.yaml')))
  stopOnSignal(async () => {
    await daemon.stop()
    await stopChild(bare.child)
    await stopChild(upstream.child)
  })
  await daemon.start()
  const telemetry = daemon.telemetry
  const record = telemetry.record
  const accessLogDir = path.join(dir, 'access')
  const smallStore = new TraceStore({maxSpans: 5_000})
  const api = daemon.dataPlane.destination('api')
  const fullService = api.service
  const plumbing = upstreamLayer(daemon.dataPlane.agent, new Map())
  const minimal = (req, ctx, reply) => {
    ctx.endpoint = api.endpoints.all()[0]
    plumbing(req, ctx, reply)
  }
  const inDaemon = createBareProxy(`http://127.0.0.1:${upstream.port}`)
  await new Promise((resolve) => inDaemon.server.listen(0, '127.0.0.1', resolve))
  const inDaemonTarget = `http://127.0.0.1:${inDaemon.server.address().port}${PATH}`
  const withHeaders = createBareProxy(`http://127.0.0.1:${upstream.port}`, {meshHeaders: true})
  await new Promise((resolve) => withHeaders.server.listen(0, '127.0.0.1', resolve))
  const withHeadersTarget = `http://127.0.0.1:${withHeaders.server.address().port}${PATH}`
  const variants = {
    bare: () => {},
    'bare-in-daemon': () => {},
    'bare-mesh-headers': () => {},
    full: () => {
      delete telemetry.metrics.observe
      delete telemetry.traces.add
      api.service = fullService
      telemetry.record = record
      telemetry.setAccessLogDir(undefined)
    },
    'access-log': () => {
      api.service = fullService
      telemetry.record = record
      telemetry.setAccessLogDir(accessLogDir)
    },
    'no-store': () => {
      api.service = fullService
      telemetry.record = record
      telemetry.traces.add = () => undefined
      telemetry.setAccessLogDir(undefined)
    },
    'store-5k': () => {
      api.service = fullService
      telemetry.record = record
      telemetry.traces.add = (span) => smallStore.add(span)
      telemetry.setAccessLogDir(undefined)
    },
    'no-metrics': () => {
      api.service = fullService
      telemetry.record = record
      delete telemetry.traces.add
      telemetry.metrics.observe = () => undefined
      telemetry.setAccessLogDir(undefined)
    },
    'no-telemetry': () => {
      delete telemetry.metrics.observe
      delete telemetry.traces.add
      api.service = fullService
      telemetry.record = () => undefined
      telemetry.setAccessLogDir(undefined)
    },
    'min-stack': () => {
      api.service = minimal
      telemetry.record = () => undefined
      telemetry.setAccessLogDir(undefined)
    },
  }
  const setFull = variants.full
  const only = opt('--only', undefined)?.split(',')
  if (only) for (const k of Object.keys(variants)) if (!only.includes(k)) delete variants[k]
  const target = daemon.status().ingress.url + PATH
  const bareTarget = `http://127.0.0.1:${bare.port}${PATH}`
  setFull()
  await load(target) // warm-up
  await load(bareTarget)
  const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, apply] of Object.entries(variants)) {
      apply()
      const m0 = machineCpu()
      const isBare = name === 'bare'
      const t0 = isBare ? cpuMicros(bare.pid) : threadsCpu()
      const main0 = isBare ? 0 : mainCpu()
      const threads0 = byThread()
      const n = await load(isBare ? bareTarget : name === 'bare-in-daemon' ? inDaemonTarget : name === 'bare-mesh-headers' ? withHeadersTarget : target)
      if (process.env.THREADS) {
        const t1 = byThread()
        process.stderr.write(`    ${Object.entries(t1).map(([k, v]) => `${k} ${((v - (threads0[k] ?? 0)) / n).toFixed(1)}`).join(', ')}\n`)
      }
      const all = (isBare ? cpuMicros(bare.pid) : threadsCpu()) - t0
      const main = isBare ? NaN : mainCpu() - main0
      const m1 = machineCpu()
      results[name].push({n, all: all / n, main: main / n, rps: n / SECONDS, busy: (m1.busy - m0.busy) / (m1.total - m0.total)})
      process.stderr.write(`  round ${round + 1} ${name}: ${fmt.f(all / n, 1)} µs/req (main thread ${fmt.f(main / n, 1)}), ${fmt.int(n / SECONDS)} req/s\n`)
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  // The yardstick: bare, or (without it in --only) the first variant run.
  const yard = results.bare ?? Object.values(results)[0]
  const bareMedian = median(yard.map((r) => r.all))
  console.log(
    table(
      ['variant', 'proxy CPU µs/req (all threads)', 'CPU × bare', 'min µs/req', 'min × bare min', 'median of per-round × bare', 'main thread µs/req', 'req/s', 'machine busy'],
      Object.entries(results).map(([k, rs]) => [
        k,
        fmt.f(median(rs.map((r) => r.all)), 1),
        `${fmt.f(median(rs.map((r) => r.all)) / bareMedian, 2)}×`,
        fmt.f(Math.min(...rs.map((r) => r.all)), 1),
        `${fmt.f(Math.min(...rs.map((r) => r.all)) / Math.min(...yard.map((r) => r.all)), 2)}×`,
        `${fmt.f(median(rs.map((r, i) => r.all / yard[i].all)), 2)}×`,
        fmt.f(median(rs.map((r) => r.main)), 1),
        fmt.int(median(rs.map((r) => r.rps))),
        `${fmt.f(100 * median(rs.map((r) => r.busy)), 0)}%`,
      ]),
    ),
  )
  console.log('machine busy: the whole machine (all cores = 100%), ours included; well above ~75% (wrk\'s core part-idle, the daemon\'s core full) means other processes were running too.')
} finally {
  await daemon?.stop().catch(() => undefined)
  await stopChild(bare.child)
  await stopChild(upstream.child)
  rmSync(dir, {recursive: true, force: true})
}
process.exit(0)
