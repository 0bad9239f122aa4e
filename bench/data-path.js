// The data path's own JavaScript, without sockets: a MeshDaemon in-process whose
// ingress handler is called with stand-in request/response objects, and whose undici
// Agent answers every dispatch at once (headers, one chunk, end) from memory. What it
// measures is exactly the work meshsim adds on top of a proxy hop — headers, call
// context, every policy layer, both spans, metrics — free of the machine's network
// and scheduling noise, so a change to the hot path shows up as a steady number.
//
//   node --expose-gc bench/data-path.js [--calls 200000] [--variant full|no-telemetry|min-stack] [--rounds 5]
//   node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 bench/data-path.js --alloc   bytes allocated per call
//   ablations (full less one policy): no-retries, no-per-try, no-timeout, no-outlier, round-robin
//
// µs/call here is CPU on one core; the socket work (node:http, undici's parser,
// syscalls) that the end-to-end benchmark adds is the same for the bare proxy.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {EventEmitter} from 'node:events'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {meshYaml, option as opt, REPO, stopOnSignal} from './lib.js'

const CALLS = Number(opt('--calls', 200_000))
const ROUNDS = Number(opt('--rounds', 5))
const VARIANTS = opt('--variant', 'full,no-telemetry,min-stack').split(',')


const BODY = Buffer.from('hello from the benchmark upstream\n')
const RESPONSE_HEADERS = ['Content-Type', 'text/plain', 'Content-Length', String(BODY.length), 'Date', 'Sun, 22 Nov 2026 05:00:00 GMT', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=65'].map((s) => Buffer.from(s))
const REQUEST_HEADERS = ['Host', '127.0.0.1:8080', 'User-Agent', 'wrk']

// The upstream answers synchronously, as undici's parser does when a whole response is in one read.
function dispatch(opts, handler) {
  handler.onConnect(() => undefined)
  handler.onHeaders(200, RESPONSE_HEADERS, () => undefined, 'OK')
  handler.onData(BODY)
  handler.onComplete([])
  return true
}

class FakeResponse extends EventEmitter {
  writableEnded = false
  writableFinished = false
  headersSent = false
  writeHead(status, headers) {
    this.status = status
    this.headers = headers
    this.headersSent = true
  }
  setHeader() {}
  write() {
    return true
  }
  end() {
    this.writableEnded = true
    this.writableFinished = true
    this.emit('finish')
    this.emit('close')
  }
  destroy() {
    this.emit('close')
  }
}

/** A MeshDaemon built from `dist`, driven in-process. */
async function dataPathOf(dist) {
  const {loadConfig} = await import(path.join(dist, 'sim/config/load-config.js'))
  const {MeshDaemon} = await import(path.join(dist, 'sim/control/daemon.js'))
  const {upstream: upstreamLayer} = await import(path.join(dist, 'sim/proxy/upstream.js'))
  const {TraceStore} = await import(path.join(dist, 'sim/telemetry/trace-store.js'))
  // A real listener only for the health checks; the data path never reaches it.
  const healthOnly = http.createServer((req, res) => res.end('ok'))
  await new Promise((r) => healthOnly.listen(0, '127.0.0.1', r))
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-datapath-'))
  writeFileSync(path.join(dir, 'mesh.yaml'), meshYaml(healthOnly.address().port))
  const daemon = new MeshDaemon(await loadConfig(path.join(dir, 'mesh.yaml')))
  stopOnSignal(() => daemon.stop())
  await daemon.start()
  const dataPlane = daemon.dataPlane
  dataPlane.agent.dispatch = dispatch
  const api = dataPlane.destination('api')
  const role = {kind: 'ingress', routes: [{prefix: '/', service: 'api'}]}
  const telemetry = daemon.telemetry
  const record = telemetry.record
  const full = api.service
  const plumbing = upstreamLayer(dataPlane.agent, new Map())
  const endpoint = api.endpoints.all()[0]
  const fullPolicy = api.policy
  // Ablations: the full policy less one part (spans and metrics on), to see what each layer costs.
  const without = (change) => () => {
    api.apply({...fullPolicy, ...change})
    telemetry.record = record
    delete telemetry.traces.add
  }
  const set = {
    full: () => (api.policy !== fullPolicy && api.apply(fullPolicy), (api.service = full), (telemetry.record = record), delete telemetry.traces.add),
    'no-retries': without({retries: undefined}),
    'no-per-try': without({retries: {...fullPolicy.retries, perTryTimeoutMs: undefined}}),
    'no-timeout': without({timeoutMs: undefined}),
    'no-outlier': without({outlierDetection: undefined}),
    'round-robin': without({loadBalancer: {...fullPolicy.loadBalancer, kind: 'round-robin'}}),
    'no-store': () => ((api.service = full), (telemetry.record = record), (telemetry.traces.add = () => undefined)),
    'no-telemetry': () => ((api.service = full), (telemetry.record = () => undefined)),
    'small-store': () => {
      const store = new TraceStore({maxSpans: 2000})
      api.service = full
      telemetry.record = record
      telemetry.traces.add = (span) => store.add(span)
    },
    'min-stack': () => {
      api.service = (req, ctx, reply) => ((ctx.endpoint = endpoint), plumbing(req, ctx, reply))
      telemetry.record = () => undefined
    },
  }
  const socket = {remoteAddress: '127.0.0.1'}

  async function run(n) {
    let started = 16
    let finished = 0
    await new Promise((resolve) => {
      const one = () => {
        const req = {method: 'GET', url: '/', rawHeaders: REQUEST_HEADERS, socket, resume() {}}
        const res = new FakeResponse()
        res.once('finish', () => {
          if (res.status !== 200) throw new Error(`status ${res.status}`)
          if (++started > n) {
            if (++finished === 16) resolve()
          } else if (started % 16 === 0) setImmediate(one)
          else queueMicrotask(one)
        })
        dataPlane.handle(role, req, res)
      }
      // A few at a time, as keep-alive connections interleave.
      for (let i = 0; i < 16; i++) one()
    })
  }
  const stop = async () => {
    await daemon.stop().catch(() => undefined)
    healthOnly.close()
    rmSync(dir, {recursive: true, force: true})
  }
  return {set, run, stop}
}

const {set, run, stop} = await dataPathOf(path.join(REPO, 'dist'))

// Bytes allocated per call: a run short enough to fit in the young generation (start node with
// --min-semi-space-size=256 --max-semi-space-size=256) grows the heap by exactly what it allocated.
// Unlike µs/call it does not wander with the machine, so it shows a change in allocations at once.
if (process.argv.includes('--alloc')) {
  const v8 = await import('node:v8')
  for (const v of VARIANTS) {
    set[v]()
    await run(5_000) // warm-up
    const bytes = []
    for (let r = 0; r < 3; r++) {
      globalThis.gc()
      const before = v8.getHeapStatistics().used_heap_size
      await run(5_000)
      bytes.push((v8.getHeapStatistics().used_heap_size - before) / 5_000)
    }
    console.log(`${v.padEnd(14)} ${Math.min(...bytes).toFixed(0).padStart(7)} bytes/call allocated (runs: ${bytes.map((b) => b.toFixed(0)).join(', ')})`)
  }
  await stop()
  process.exit(0)
}

// Where those bytes are allocated: V8's sampling heap profiler, keeping objects already
// collected, summed by allocating function (self) and mapped back to src/**/*.ts.
if (process.argv.includes('--alloc-sites')) {
  const {Session} = await import('node:inspector/promises')
  const {where} = await import('./profile-summary.js')
  const session = new Session()
  session.connect()
  // --survivors: only what outlived a scavenge (promoted to the old generation, where only
  // the slow major GC frees it): run with the default young generation, over many scavenges.
  const survivors = process.argv.includes('--survivors')
  const calls = survivors ? 200_000 : 20_000
  set[VARIANTS[0]]()
  await run(5_000)
  await session.post('HeapProfiler.startSampling', {samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivors})
  await run(calls)
  const {profile} = await session.post('HeapProfiler.stopSampling')
  const bySite = new Map()
  // --alloc-sites --callers NAME: also where the allocations of function NAME come from.
  const callersOf = opt('--callers', undefined)
  const callers = new Map()
  const walk = (node, parents = []) => {
    const bytes = node.selfSize
    if (callersOf && node.callFrame.functionName === callersOf && bytes > 0) {
      const k = parents.slice(-3).map((f) => `${f.functionName || '(anonymous)'} ${where(f)}`).join(' < ')
      callers.set(k, (callers.get(k) ?? 0) + bytes)
    }
    if (bytes > 0) {
      const k = `${node.callFrame.functionName || '(anonymous)'}  ${where(node.callFrame)}`
      bySite.set(k, (bySite.get(k) ?? 0) + bytes)
    }
    for (const c of node.children) walk(c, [...parents, node.callFrame])
  }
  walk(profile.head)
  for (const [k, b] of callers) console.log(`${(b / calls).toFixed(0).padStart(7)} B/call from ${k}`)
  const total = [...bySite.values()].reduce((a, b) => a + b, 0)
  console.log(`${VARIANTS[0]}: ~${(total / calls).toFixed(0)} bytes/call sampled; top allocating functions:`)
  for (const [k, b] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(b / calls).toFixed(0).padStart(7)} B/call  ${k}`)
  await stop()
  process.exit(0)
}

const results = Object.fromEntries(VARIANTS.map((v) => [v, []]))
for (const v of VARIANTS) {
  set[v]()
  await run(CALLS / 4) // warm-up
}
for (let r = 0; r < ROUNDS; r++) {
  for (const v of VARIANTS) {
    set[v]()
    globalThis.gc?.()
    const t0 = process.cpuUsage()
    const w0 = performance.now()
    await run(CALLS)
    const t = process.cpuUsage(t0)
    results[v].push((t.user + t.system) / CALLS)
    if (process.env.VERBOSE) { globalThis.gc?.(); console.error(v, ((t.user + t.system) / CALLS).toFixed(2), "wall", ((performance.now() - w0) * 1000 / CALLS).toFixed(2), "heap", (process.memoryUsage().heapUsed / 1e6).toFixed(1)) }
  }
}
console.error(`heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (const v of VARIANTS) console.log(`${v.padEnd(14)} ${median(results[v]).toFixed(2).padStart(7)} µs/call (min ${Math.min(...results[v]).toFixed(2)})`)
await stop()
process.exit(0)
