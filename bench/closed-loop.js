// Closed-loop load (the fallback when wrk is not installed): `connections` loops,
// each sending its next request as soon as the previous answer is complete, over one
// undici keep-alive Pool driven with raw dispatch handlers (cheap on the client side,
// which shares the machine with what it measures).
//
//   node bench/closed-loop.js '{"target":"http://127.0.0.1:8000/","connections":64,"warmupMs":1500,"durationMs":5000}'
// stdout: `WARM` when the warm-up ends and the measured window starts, then `RESULT <json>`.
import {Pool} from 'undici'

const opts = JSON.parse(process.argv[2])
const url = new URL(opts.target)
const path = url.pathname + url.search
const pool = new Pool(url.origin, {connections: opts.connections, pipelining: 1, keepAliveTimeout: 10_000})

let measuring = false
let stopped = false
let ok = 0
let errors = 0
const statuses = {}
const errorKinds = {}

class Handler {
  constructor(loop) {
    this.loop = loop
    this.status = 0
  }
  onConnect() {}
  onHeaders(status) {
    this.status = status
    return true
  }
  onData() {
    return true
  }
  onComplete() {
    if (measuring) {
      statuses[this.status] = (statuses[this.status] ?? 0) + 1
      if (this.status >= 200 && this.status < 400) ok++
      else errors++
    }
    this.loop()
  }
  onError(error) {
    if (measuring) {
      errors++
      const code = error.code ?? error.name
      errorKinds[code] = (errorKinds[code] ?? 0) + 1
    }
    setTimeout(this.loop, 10) // do not spin on a refused connection
  }
}

let inflight = 0
let resolveDrained
const drained = new Promise((r) => (resolveDrained = r))
function startLoop() {
  const loop = () => {
    inflight--
    if (stopped) {
      if (inflight === 0) resolveDrained()
      return
    }
    inflight++
    pool.dispatch({path, method: 'GET', headers: {host: url.host}}, new Handler(loop))
  }
  inflight++
  pool.dispatch({path, method: 'GET', headers: {host: url.host}}, new Handler(loop))
}

for (let i = 0; i < opts.connections; i++) startLoop()
await new Promise((r) => setTimeout(r, opts.warmupMs))
console.log('WARM')
measuring = true
const t0 = performance.now()
await new Promise((r) => setTimeout(r, opts.durationMs))
measuring = false
const elapsedMs = performance.now() - t0
stopped = true
await Promise.race([drained, new Promise((r) => setTimeout(r, 3_000))])
await pool.close().catch(() => undefined)
const requests = ok + errors
console.log(
  'RESULT ' +
    JSON.stringify({tool: 'node', requests, errors, statuses, errorKinds, durationMs: elapsedMs, rps: (requests * 1000) / elapsedMs}),
)
process.exit(0)
