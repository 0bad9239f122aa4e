// `node bench/cold-start.js`: what a cold start costs, against a warm request in the same
// run. A cold start is the whole wait of the first request to a service with no instance:
// the process starts, passes its health check, and answers. Measured for
//
//   sim  a simulated service (`simulate:`, meshsim's own child process)
//   fn   the serverless template's Node.js function (templates/serverless/api/handler.js,
//        with INIT_MS=0: the platform's part only; the template adds 300 ms of its own init),
//        which reads db (a simulated service that stays warm) on each request
//
// each through the ingress, COLD_STARTS times (20), with a warm request right after each
// cold one. Two ways to make a service cold (BENCH_COLD):
//
//   zero     (default) scale to zero: `scaling: {minScale: 0, initialScale: 0, window: 6s,
//            scaleToZeroGracePeriod: 6s}`; wait until the autoscaler has stopped the last
//            instance (~12 s idle), then the request is held by the activator while one
//            cold-starts. The mesh's own figure (x-mesh-cold-start) is reported beside it.
//   restart  `replicas: 1`; `mesh stop` the service, then time `mesh start` (through the
//            control API, which returns once the instance is healthy) plus the first
//            request. For a mesh without scale from zero; no activator in the path.
//
// Env knobs: BENCH_COLD (zero | restart), BENCH_COLD_STARTS (20), BENCH_JSON (raw samples).
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fmt, forceMeshDown, machine, REPO, table} from './lib.js'
import {connect} from '../dist/sim/control/control-client.js'
import {meshPaths} from '../dist/sim/control/state-file.js'

const MODE = process.env.BENCH_COLD ?? 'zero'
if (!['zero', 'restart'].includes(MODE)) throw new Error(`BENCH_COLD is zero or restart, not ${MODE}`)
const COLD_STARTS = Number(process.env.BENCH_COLD_STARTS ?? 20)
const CLI = path.join(REPO, 'bin', 'run.js')
const HANDLER = path.join(REPO, 'templates', 'serverless', 'api', 'handler.js')
const SERVICES = ['sim', 'fn']
/** Window + grace is 12 s; the autoscaler decides each second, and the drain takes its time. */
const ZERO_WAIT_MS = 60_000

const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-cold-'))
const meshFile = path.join(dir, 'mesh.yaml')
let meshUp = false

const log = (s) => process.stderr.write(s + '\n')

function meshYaml() {
  const howMany =
    MODE === 'zero'
      ? ['    scaling: {minScale: 0, initialScale: 0, maxScale: 1, containerConcurrency: 1, target: 1, window: 6s, scaleToZeroGracePeriod: 6s}']
      : ['    replicas: 1']
  return [
    'name: cold',
    'ingress:',
    '  port: 0',
    '  routes: [{prefix: /sim, service: sim, rewrite: /}, {prefix: /fn, service: fn, rewrite: /}]',
    'services:',
    '  sim:',
    '    simulate: {latency: 1ms}',
    ...howMany,
    '  fn:',
    `    command: ${JSON.stringify(`${process.execPath} ${HANDLER}`)}`,
    "    env: {INIT_MS: '0'}",
    '    dependsOn: [db]',
    '    health: {path: /healthz}',
    ...howMany,
    '  db:',
    '    simulate: {latency: 1ms}',
    '',
  ].join('\n')
}

function cli(args, timeout = 120_000) {
  return execFileSync(process.execPath, [CLI, ...args, '-f', meshFile], {cwd: dir, encoding: 'utf8', timeout, env: {...process.env, NO_COLOR: '1'}})
}

function cleanupSync() {
  if (meshUp) {
    meshUp = false
    forceMeshDown(dir, meshFile)
  }
  rmSync(dir, {recursive: true, force: true})
}
process.on('exit', cleanupSync)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130))

/** One GET, timed from send to the end of the body: {ms, status, coldStartMs}. */
async function timedGet(url) {
  const t0 = performance.now()
  const res = await fetch(url, {signal: AbortSignal.timeout(60_000)})
  await res.arrayBuffer()
  const ms = performance.now() - t0
  const header = res.headers.get('x-mesh-cold-start')
  return {ms, status: res.status, coldStartMs: header === null ? undefined : Number(header)}
}

async function instancesOf(client, service) {
  const status = await client.status()
  return status.services.find((s) => s.name === service)?.instances.length ?? 0
}

async function untilNoInstance(client, service) {
  const t0 = performance.now()
  while ((await instancesOf(client, service)) > 0) {
    if (performance.now() - t0 > ZERO_WAIT_MS) throw new Error(`${service} still runs an instance after ${ZERO_WAIT_MS / 1000} s idle: is scale to zero acted on?`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** One cold request and the warm one after it, for `service` (at zero instances already, in zero mode). */
async function sample(client, ingress, service) {
  let cold
  if (MODE === 'zero') {
    if ((await instancesOf(client, service)) > 0) throw new Error(`${service} has an instance again before its cold request`)
    cold = await timedGet(`${ingress}/${service}`)
  } else {
    await client.stop([service])
    const t0 = performance.now()
    await client.start([service])
    const first = await timedGet(`${ingress}/${service}`)
    cold = {...first, ms: performance.now() - t0}
  }
  const warm = await timedGet(`${ingress}/${service}`)
  if (cold.status !== 200 || warm.status !== 200) throw new Error(`${service}: cold ${cold.status}, warm ${warm.status}`)
  return {cold: cold.ms, warm: warm.ms, header: cold.coldStartMs}
}

function pct(values, p) {
  const sorted = values.filter((v) => v !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  // Nearest rank: with 20 samples, p99 is the slowest one.
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

writeFileSync(meshFile, meshYaml())
const m = machine()
log(`cold starts: ${COLD_STARTS} per service, mode ${MODE}; ${m.cores} cores, ${m.cpu}, node ${m.node}`)
cli(['up', '-d'])
meshUp = true
const client = connect(meshPaths(dir))
const ingress = (await client.status()).ingress.url
// One request each first: the sidecars' pools and the ingress route are warm, only the instance is cold.
for (const s of SERVICES) {
  if (MODE === 'zero') await timedGet(`${ingress}/${s}`)
}
const samples = Object.fromEntries(SERVICES.map((s) => [s, []]))
for (let i = 0; i < COLD_STARTS; i++) {
  // Both cool down together (one idle period per round, not two); the cold starts then go one
  // at a time, so neither competes with the other for the CPU.
  if (MODE === 'zero') await Promise.all(SERVICES.map((s) => untilNoInstance(client, s)))
  const round = []
  for (const s of SERVICES) round.push(await sample(client, ingress, s))
  SERVICES.forEach((s, j) => samples[s].push(round[j]))
  log(`  ${i + 1}/${COLD_STARTS}: ${SERVICES.map((s, j) => `${s} cold ${fmt.f(round[j].cold, 0)} ms, warm ${fmt.f(round[j].warm, 1)} ms`).join('; ')}`)
}
cli(['down'])
meshUp = false

const ms = (v) => (Number.isFinite(v) ? `${fmt.f(v, v < 10 ? 2 : 0)} ms` : '–')
const rows = SERVICES.map((s) => {
  const list = samples[s]
  const cold = list.map((x) => x.cold)
  const warm = list.map((x) => x.warm)
  const header = list.map((x) => x.header)
  return [
    s === 'sim' ? 'simulated service' : 'Node.js function (serverless template)',
    ms(pct(cold, 50)),
    ms(pct(cold, 99)),
    ms(pct(warm, 50)),
    ms(pct(warm, 99)),
    fmt.x(pct(cold, 50) / pct(warm, 50), 0),
    MODE === 'zero' ? ms(pct(header, 50)) : '–',
  ]
})
console.log(`\nCold start (${MODE === 'zero' ? 'scale from zero, through the activator' : 'mesh stop / start, then the first request'}), ${COLD_STARTS} each, against the warm request right after it:\n`)
console.log(table(['service', 'cold p50', 'cold p99', 'warm p50', 'warm p99', 'cold ÷ warm (p50)', 'x-mesh-cold-start p50'], rows))
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({mode: MODE, machine: m, samples}, null, 2))
