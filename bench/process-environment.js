// What the daemon's process costs the same proxy code: bench/bare-proxy.js run in
// processes prepared differently, measured in alternating rounds against the plain one.
// Session 9 found an idle daemon beside it, or only other traffic through node:http and
// undici before it serves, costs ~5–9% (median of per-round ratios over 14 rounds), while
// merely loading the daemon's modules costs ~2%: shared Node and undici functions that have
// seen other object shapes run slower (megamorphic inline caches, the likeliest reading), a
// cost the daemon's data plane pays too, and which a data plane on a worker thread (its own
// V8 isolate) would not.
//
//   node bench/process-environment.js [--rounds 14] [--seconds 3] [--modes modules,daemon,pollute]
//
// plain    bench/bare-proxy.js as row (b) runs it
// modules  the same, after importing the daemon's modules (code loaded, none of it run)
// probes   the same, while the daemon's HTTP health probe checks another local server once a second
// http-client  the same with a node:http GET as that probe (what it was before session 10)
// daemon   the same, beside an idle MeshDaemon (the benchmark's mesh.yaml without front) in its process
// pollute  the same, after 3,000 requests of other shapes through node:http, undici and net
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {cpuMicros, machine, meshYaml, option as opt, runWrk, startServer, stopChild, stopOnSignal, which} from './lib.js'

const ROUNDS = Number(opt('--rounds', 14))
const SECONDS = Number(opt('--seconds', 3))
const MODES = ['plain', ...opt('--modes', 'modules,daemon,pollute').split(',').filter((m) => m && m !== 'plain')]
if (!which('wrk')) throw new Error('process-environment.js needs wrk (apt-get install wrk)')
const pin = machine().cores >= 2 && which('taskset') !== undefined
const [clientCpu, serverCpu] = pin ? [0, 1] : [undefined, undefined]

const upstream = await startServer('upstream.js', {PORT: '0'}, serverCpu)
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-env-'))
// The daemon mode's mesh: row (c)'s, less the front app (nothing here calls it).
const yaml = meshYaml(upstream.port).replace(/\n {2}front:[\s\S]*$/, '\n').replace('{prefix: /front, service: front}, ', '')
writeFileSync(path.join(dir, 'mesh.yaml'), yaml)
const proxies = []
stopOnSignal(async () => {
  for (const p of proxies) await stopChild(p.child)
  await stopChild(upstream.child)
})
for (const mode of MODES) {
  const env = {PORT: '0', UPSTREAM: `http://127.0.0.1:${upstream.port}`, BARE_ENV: mode, BARE_ENV_MESH: path.join(dir, 'mesh.yaml')}
  proxies.push({mode, ...(await startServer('bare-proxy.js', env, serverCpu))})
}
const perRound = new Map(MODES.map((m) => [m, []]))
for (const p of proxies) runWrk(`http://127.0.0.1:${p.port}/`, {connections: 64, durationS: 1, cpu: clientCpu})
for (let round = 1; round <= ROUNDS; round++) {
  const line = []
  for (const p of proxies) {
    const before = cpuMicros(p.pid)
    const r = runWrk(`http://127.0.0.1:${p.port}/`, {connections: 64, durationS: SECONDS, cpu: clientCpu})
    const us = (cpuMicros(p.pid) - before) / Math.max(1, r.requests)
    perRound.get(p.mode).push(us)
    line.push(`${p.mode} ${us.toFixed(1)}`)
  }
  console.log(`round ${round}: ${line.join(', ')} µs/req`)
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const plain = perRound.get('plain')
for (const mode of MODES.slice(1)) {
  const ratios = perRound.get(mode).map((us, i) => us / plain[i])
  console.log(`${mode}: median ${median(perRound.get(mode)).toFixed(1)} µs/req against plain ${median(plain).toFixed(1)}; median of per-round ratios ${median(ratios).toFixed(3)}× (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`)
}
for (const p of proxies) await stopChild(p.child)
await stopChild(upstream.child)
rmSync(dir, {recursive: true, force: true})
