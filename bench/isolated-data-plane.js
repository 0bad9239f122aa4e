// The mesh's data plane alone in a process, against the same data plane inside the daemon:
// the same DataPlane, policies, telemetry and ingress route, but no health checks, control
// API, supervisor or other listeners beside it. What the difference measures is what the
// daemon's other work costs the request path (process-environment.js measures the same
// for the bare proxy), i.e. what a data plane on a worker thread of its own could save.
//
//   node bench/isolated-data-plane.js [--rounds 14] [--seconds 3]
//   ISOLATED_MESH=mesh.yaml node bench/isolated-data-plane.js   (the isolated process; prints LISTENING <port>)
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {cpuMicros, machine, meshYaml, option as opt, pinned, REPO, runWrk, startServer, stopChild, stopOnSignal, which} from './lib.js'

const CLI = path.join(REPO, 'bin', 'run.js')

if (process.env.ISOLATED_MESH) {
  const file = process.env.ISOLATED_MESH
  const dist = path.join(REPO, 'dist', 'sim')
  const {loadConfig} = await import(path.join(dist, 'config/load-config.js'))
  const {Registry} = await import(path.join(dist, 'control/registry.js'))
  const {DataPlane} = await import(path.join(dist, 'proxy/data-plane.js'))
  const {Telemetry} = await import(path.join(dist, 'telemetry/telemetry.js'))
  const {FaultSet} = await import(path.join(dist, 'faults/fault-set.js'))
  const {TickClock} = await import(path.join(dist, 'time/tick-clock.js'))
  const {seedFrom} = await import(path.join(dist, 'time/random.js'))
  const {versionWeights} = await import(path.join(dist, 'config/versions.js'))
  const {tuneHeapForProxying} = await import(path.join(dist, 'control/heap-tuning.js'))
  tuneHeapForProxying()
  // As MeshDaemon's constructor builds them.
  const config = await loadConfig(file)
  const clock = new TickClock()
  const registry = new Registry(config.services.map((s) => s.name))
  const telemetry = new Telemetry({clock})
  const faults = new FaultSet(clock)
  const plane = new DataPlane(registry, config.services, new Map(config.services.map((s) => [s.name, versionWeights(s)])), {clock, faults, sink: telemetry, tcpMetrics: telemetry.tcp, seed: seedFrom(config.name)})
  const api = config.services.find((s) => s.name === 'api').versions[0].workload
  const endpoint = {instance: 'api-v1-0', service: 'api', version: 'v1', host: api.host, port: api.port, inboundPort: 0, origin: `http://${api.host}:${api.port}`}
  plane.setInstance(endpoint)
  registry.add(endpoint)
  const ingress = await plane.listen({kind: 'ingress', routes: config.ingress.routes})
  console.log(`LISTENING ${ingress.port}`)
  process.once('SIGTERM', () => void plane.drain(100).then(() => process.exit(0)))
} else {
  const ROUNDS = Number(opt('--rounds', 14))
  const SECONDS = Number(opt('--seconds', 3))
  if (!which('wrk')) throw new Error('isolated-data-plane.js needs wrk (apt-get install wrk)')
  const pin = machine().cores >= 2 && which('taskset') !== undefined
  const [clientCpu, serverCpu] = pin ? [0, 1] : [undefined, undefined]
  const upstream = await startServer('upstream.js', {PORT: '0'}, serverCpu)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-isolated-'))
  const file = path.join(dir, 'mesh.yaml')
  // Row (c)'s mesh, less the front app (nothing here calls it).
  writeFileSync(file, meshYaml(upstream.port).replace(/\n {2}front:[\s\S]*$/, '\n').replace('{prefix: /front, service: front}, ', ''))
  const [cmd, args] = pinned(serverCpu, process.execPath, [CLI, 'up', '-d', '-f', file])
  execFileSync(cmd, args, {cwd: dir, stdio: 'ignore', timeout: 60_000})
  const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
  const isolated = await startServer('isolated-data-plane.js', {ISOLATED_MESH: file}, serverCpu).catch((e) => console.error(e.message))
  const stop = async () => {
    if (isolated) await stopChild(isolated.child)
    execFileSync(process.execPath, [CLI, 'down', '-f', file], {cwd: dir, stdio: 'ignore'})
    await stopChild(upstream.child)
    rmSync(dir, {recursive: true, force: true})
  }
  stopOnSignal(stop)
  if (!isolated) throw new Error('the isolated data plane did not start')
  const targets = [
    {name: 'daemon', pid: state.daemon.pid, url: `${state.ingressUrl}/`},
    {name: 'isolated', pid: isolated.pid, url: `http://127.0.0.1:${isolated.port}/`},
  ]
  // Warm-up: both JIT-compiled, connections open, the trace sampler past its first burst.
  for (const t of targets) runWrk(t.url, {connections: 64, durationS: 3, cpu: clientCpu})
  const us = {daemon: [], isolated: []}
  for (let round = 1; round <= ROUNDS; round++) {
    const line = []
    // Alternate which goes first: the machine's speed drifts within a round too.
    for (const t of round % 2 ? targets : [...targets].reverse()) {
      const before = cpuMicros(t.pid)
      const r = runWrk(t.url, {connections: 64, durationS: SECONDS, cpu: clientCpu})
      us[t.name].push((cpuMicros(t.pid) - before) / Math.max(1, r.requests))
      line.push(`${t.name} ${us[t.name].at(-1).toFixed(1)}${r.errors ? ` (${r.errors} errors of ${r.requests})` : ""}`)
    }
    console.log(`round ${round}: ${line.join(', ')} µs/req`)
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const ratios = us.isolated.map((x, i) => x / us.daemon[i])
  console.log(`isolated data plane: median ${median(us.isolated).toFixed(1)} µs/req against the daemon's ${median(us.daemon).toFixed(1)}; median of per-round ratios ${median(ratios).toFixed(3)}× (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`)
  await stop()
}
