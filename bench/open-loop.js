// Open-loop load at a fixed rate with the project's own generator (runLoad, as wrk2
// does it): request i is due at t0 + i/rps whatever happened before, and latency
// runs from that INTENDED time, so a stall cannot hide by slowing the sender.
// A warm-up at the same rate on the same connection pool comes first.
//
//   node bench/open-loop.js '{"target":"http://127.0.0.1:8000/","rps":1000,"warmupMs":1000,"durationMs":5000}'
// stdout: `WARM` when the measured run starts, then `RESULT <json>` (milliseconds).
import {runLoad, undiciSend} from '../dist/sim/load/load-generator.js'
import {LatencyHistogram} from '../dist/sim/telemetry/histogram.js'

const opts = JSON.parse(process.argv[2])
const url = new URL(opts.target)
const concurrency = opts.concurrency ?? 256
const {send, pool} = undiciSend(url.origin, concurrency)
const path = url.pathname + url.search
const base = {target: url.origin, rps: opts.rps, path, concurrency, timeoutMs: 5_000, send}

await runLoad({...base, durationMs: opts.warmupMs})
console.log('WARM')
// Service time (from the moment a request was actually sent), beside the intended-time latency.
const service = new LatencyHistogram()
let notOk = 0
const result = await runLoad({
  ...base,
  durationMs: opts.durationMs,
  onResponse: (o) => {
    service.record(o.endMs - o.sentMs)
    if (!o.error && (o.status < 200 || o.status >= 400)) notOk++
  },
})
await pool.close().catch(() => undefined)
const errors = Object.values(result.errors).reduce((a, b) => a + b, 0) + notOk
console.log(
  'RESULT ' +
    JSON.stringify({
      requests: result.requests,
      errors,
      errorKinds: result.errors,
      statuses: result.statuses,
      throughputRps: result.throughputRps,
      latency: result.latency,
      serviceTime: {p50: service.percentile(0.5), p99: service.percentile(0.99)},
    }),
)
process.exit(0)
