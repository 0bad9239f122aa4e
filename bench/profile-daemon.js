// Profiles the mesh daemon's data path under load. The CLI forks the daemon, which
// makes `--cpu-prof` awkward, so this script runs a MeshDaemon in-process (the same
// class daemon-main.js runs) on the benchmark's mesh.yaml, with the upstream and the
// load generator as separate processes, then summarises the profile.
//
//   node bench/profile-daemon.js [--path /] [--seconds 8] [--connections 64] [--keep]
//     → re-runs itself under `node --cpu-prof`, then prints bench/profile-summary.js's report
//   node --cpu-prof bench/profile-daemon.js     (the child mode, if you want the raw profile only)
//
// --path /front profiles row (d) (two mesh calls through the front app) instead of row (c).
// --bare profiles row (b)'s bare proxy the same way, in-process, as the yardstick to diff against.
// --alloc-sites: instead of CPU, where the daemon (or, with --bare, the bare proxy) allocates
//   under load, bytes per request by allocating function (V8's sampling heap profiler, every
//   object counted whether or not it was collected since) — the sockets, node:http and undici
//   included, which bench/data-path.js leaves out.
import {execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {BENCH_DIR, machine, meshYaml, pinned, runNodeClient, runWrk, startServer, stopChild, stopOnSignal, which, option as opt} from './lib.js'

const args = process.argv.slice(2)
const SECONDS = Number(opt('--seconds', 8))
const PATH = opt('--path', '/')
const CONNECTIONS = Number(opt('--connections', 64))
const BARE = args.includes('--bare')
const ALLOC = args.includes('--alloc-sites')
const PIN = process.env.BENCH_PIN !== '0' && machine().cores >= 2 && which('taskset') !== undefined
const self = fileURLToPath(import.meta.url)

if (!ALLOC && !process.execArgv.some((a) => a.startsWith('--cpu-prof'))) {
  // Parent: run the child under the profiler (pinned like the benchmark's proxies), then summarise.
  const out = mkdtempSync(path.join(os.tmpdir(), 'meshsim-profile-'))
  const [cmd, cmdArgs] = pinned(PIN ? 1 : undefined, process.execPath, [
    '--cpu-prof',
    '--cpu-prof-interval',
    '250',
    '--cpu-prof-dir',
    out,
    '--cpu-prof-name',
    'daemon.cpuprofile',
    self,
    ...args,
    '--result',
    path.join(out, 'result.json'),
  ])
  execFileSync(cmd, cmdArgs, {stdio: 'inherit'})
  const result = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'))
  const {summarise} = await import('./profile-summary.js')
  const profile = JSON.parse(readFileSync(path.join(out, 'daemon.cpuprofile'), 'utf8'))
  console.log(`${BARE ? 'bare proxy' : 'mesh daemon'}; load: ${result.tool}, ${result.requests} requests in ${(result.durationMs / 1000).toFixed(1)} s (${Math.round(result.rps)} req/s), ${result.errors} errors, path ${PATH}`)
  console.log(`daemon CPU under load: ${(result.daemonCpuUs / Math.max(1, result.requests)).toFixed(1)} µs/req (utime+stime, all threads, profiler overhead included)`)
  console.log(summarise(profile, {requests: result.requests, top: 30}))
  if (args.includes('--keep')) console.log(`\nprofile kept in ${out}/daemon.cpuprofile (open it in Chrome DevTools → Performance)`)
  else rmSync(out, {recursive: true, force: true})
} else {
  const {loadConfig} = await import('../dist/sim/config/load-config.js')
  const {MeshDaemon} = await import('../dist/sim/control/daemon.js')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-profile-mesh-'))
  const upstream = await startServer('upstream.js', {PORT: '0'}, PIN ? 1 : undefined)
  let daemon
  let bare
  try {
    let target
    if (BARE) {
      const {createBareProxy} = await import('./bare-proxy.js')
      bare = createBareProxy(`http://127.0.0.1:${upstream.port}`)
      await new Promise((resolve) => bare.server.listen(0, '127.0.0.1', resolve))
      target = `http://127.0.0.1:${bare.server.address().port}${PATH}`
    } else {
      writeFileSync(path.join(dir, 'mesh.yaml'), meshYaml(upstream.port))
      daemon = new MeshDaemon(await loadConfig(path.join(dir, 'mesh.yaml')))
      stopOnSignal(async () => {
        await daemon.stop()
        await stopChild(upstream.child)
      })
      await daemon.start()
      target = daemon.status().ingress.url + PATH
    }
    const clientCpu = PIN ? 0 : undefined
    const sampler = ALLOC ? await startAllocationSampling() : undefined
    const cpu0 = process.cpuUsage()
    let result
    if (which('wrk') && process.env.BENCH_CLIENT !== 'node') {
      // wrk runs synchronously in a child; the daemon must keep serving meanwhile, so run it async.
      result = await new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', `
          import(${JSON.stringify(path.join(BENCH_DIR, 'lib.js'))}).then(({runWrk}) =>
            console.log(JSON.stringify(runWrk(${JSON.stringify(target)}, {connections: ${CONNECTIONS}, durationS: ${SECONDS}, cpu: ${clientCpu ?? 'undefined'}}))))`], {stdio: ['ignore', 'pipe', 'inherit']})
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`wrk exited ${code}`))))
      })
    } else {
      result = await runNodeClient('closed-loop.js', {target, connections: CONNECTIONS, warmupMs: 0, durationMs: SECONDS * 1000}, clientCpu)
    }
    const cpu = process.cpuUsage(cpu0)
    result.daemonCpuUs = cpu.user + cpu.system
    if (sampler) {
      console.log(`${BARE ? 'bare proxy' : 'mesh daemon'}: ${result.requests} requests in ${SECONDS} s, ${result.errors} errors`)
      console.log(await sampler.report(result.requests))
    } else {
      const i = args.indexOf('--result')
      if (i >= 0) writeFileSync(args[i + 1], JSON.stringify(result))
      else console.log(JSON.stringify(result))
    }
  } finally {
    await daemon?.stop().catch(() => undefined)
    bare?.server.close()
    await bare?.pool.close().catch(() => undefined)
    await stopChild(upstream.child)
    rmSync(dir, {recursive: true, force: true})
  }
  process.exit(0)
}

/** V8's sampling heap profiler from now on; report(requests) → bytes per request by allocating function. */
async function startAllocationSampling() {
  const {Session} = await import('node:inspector/promises')
  const {where} = await import('./profile-summary.js')
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', {samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true})
  return {
    async report(requests) {
      const {profile} = await session.post('HeapProfiler.stopSampling')
      const bySite = new Map()
      // --callers NAME: also where the allocations of function NAME come from.
      const callersOf = opt('--callers', undefined)
      const callers = new Map()
      const walk = (node, parents) => {
        if (node.selfSize > 0) {
          const k = `${node.callFrame.functionName || '(anonymous)'}  ${where(node.callFrame)}`
          bySite.set(k, (bySite.get(k) ?? 0) + node.selfSize)
          if (node.callFrame.functionName === callersOf) {
            const chain = parents.slice(-4).map((f) => `${f.functionName || '(anonymous)'} ${where(f)}`).join(' < ')
            callers.set(chain, (callers.get(chain) ?? 0) + node.selfSize)
          }
        }
        for (const c of node.children) walk(c, [...parents, node.callFrame])
      }
      walk(profile.head, [])
      const n = Math.max(1, requests)
      const total = [...bySite.values()].reduce((a, b) => a + b, 0)
      const lines = [...[...callers].sort((a, b) => b[1] - a[1]).map(([k, b]) => `${(b / n).toFixed(0).padStart(7)} B/req from ${k}`)]
      lines.push(`~${(total / n).toFixed(0)} bytes/request allocated; top allocating functions:`)
      for (const [k, b] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 45)) lines.push(`${(b / n).toFixed(0).padStart(7)} B/req  ${k}`)
      return lines.join('\n')
    },
  }
}
