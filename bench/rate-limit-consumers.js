// What per-consumer rate limits cost the daemon: the heap a flood of distinct keys leaves
// (bounded by maxConsumers, default 10,000 per service), and the time per request of the
// keyed lookup next to one limiter for the whole service.
//
//   npm run build && node --expose-gc bench/rate-limit-consumers.js [keys=100000]
// stdout: one line per algorithm, then `RESULT <json>`.
import {createRateLimiter, DEFAULT_MAX_CONSUMERS} from '../dist/sim/proxy/policy/rate-limit.js'

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc, so the heap is measured after a collection')
  process.exit(2)
}

const KEYS = Number(process.argv[2] ?? 100_000)
const ALGORITHMS = ['token-bucket', 'leaky-bucket', 'fixed-window', 'sliding-log', 'sliding-window']
// A realistic API key: 40 characters, unlike any other.
const keyOf = (i) => `sk_live_${i.toString(36).padStart(32, '0')}`

let now = 0
const clock = {now: () => now}

function heapAfterGc() {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

const config = (algorithm) => ({
  algorithm,
  requests: 5,
  periodMs: 1000,
  burst: 5,
  perSource: false,
  key: {header: 'x-api-key'},
  tiers: {by: {header: 'x-plan'}, limits: {free: {requests: 10, periodMs: 1000, burst: 10}, gold: {requests: 200, periodMs: 1000, burst: 50}}},
})

/** The heap left once `keys` distinct consumers made `perKey` requests each (all gold). */
function heapFor(algorithm, keys, perKey) {
  const before = heapAfterGc()
  const limits = createRateLimiter(config(algorithm), clock)
  const headers = {'x-api-key': '', 'x-plan': 'gold'}
  const req = {source: 'ingress', headers}
  for (let i = 0; i < keys; i++) {
    headers['x-api-key'] = keyOf(i)
    const limiter = limits.limiterFor(req)
    for (let j = 0; j < perKey; j++) limiter.tryAcquire((now += 0.001))
  }
  const bytes = heapAfterGc() - before
  return {bytes, size: limits.size(), keep: limits}
}

/** ns per request: `keys` consumers in turn, against one limiter for the whole service. */
function nsPerRequest(algorithm, keys, requests) {
  const keyed = createRateLimiter(config(algorithm), clock)
  const whole = createRateLimiter({...config(algorithm), key: undefined, tiers: undefined}, clock)
  const reqs = Array.from({length: keys}, (_, i) => ({source: 'ingress', headers: {'x-api-key': keyOf(i), 'x-plan': 'gold'}}))
  const time = (limits) => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < requests; i++) {
      const req = reqs[i % keys]
      const t = (now += 0.01)
      limits.limiterFor(req).tryAcquire(t)
      limits.limiterFor(req).quota(t)
    }
    return Number(process.hrtime.bigint() - start) / requests
  }
  time(keyed)
  time(whole)
  return {keyed: time(keyed), whole: time(whole)}
}

const rows = []
for (const algorithm of ALGORITHMS) {
  const flood = heapFor(algorithm, KEYS, 1)
  // The worst a consumer can hold: sliding-log keeps one time per request of its rate (gold: 200).
  const full = heapFor(algorithm, DEFAULT_MAX_CONSUMERS, 200)
  const speed = nsPerRequest(algorithm, DEFAULT_MAX_CONSUMERS, 1_000_000)
  const row = {
    algorithm,
    keys: KEYS,
    consumersKept: flood.size,
    heapMB: +(flood.bytes / 2 ** 20).toFixed(2),
    bytesPerConsumer: Math.round(flood.bytes / flood.size),
    heapMBAtFullQuota: +(full.bytes / 2 ** 20).toFixed(2),
    nsPerRequestKeyed: Math.round(speed.keyed),
    nsPerRequestWhole: Math.round(speed.whole),
  }
  rows.push(row)
  console.log(
    `${algorithm.padEnd(15)} ${KEYS} keys → ${row.consumersKept} kept, ${row.heapMB} MB (${row.bytesPerConsumer} B each); ` +
      `${DEFAULT_MAX_CONSUMERS} × 200 requests: ${row.heapMBAtFullQuota} MB; ${row.nsPerRequestKeyed} ns/request keyed, ${row.nsPerRequestWhole} ns whole`,
  )
}
console.log(`RESULT ${JSON.stringify(rows)}`)
