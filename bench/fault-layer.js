// Issue 5: "the fault layer costs nothing measurable on requests no fault matches".
// Runs the real fault layer over a do-nothing inner service, in-process, and prints
// ns per request against the same call without the layer, measured in one run:
//   (1) no fault layer, (2) layer with no fault at all, (3) a fault on another
//   service, (4) a fault on this service whose selector (a header) does not match.
//
//   npm run build && node bench/fault-layer.js
import {fault} from '../dist/sim/proxy/layers/fault.js'
import {FaultSet} from '../dist/sim/faults/fault-set.js'
import {RealClock} from '../dist/sim/time/clock.js'

const N = Number(process.env.BENCH_N ?? 2_000_000)
const clock = new RealClock()
const response = {status: 200, headers: {}, body: null}
const inner = (_req, _ctx, reply) => reply.ok(response)
const req = {method: 'GET', path: '/items', headers: {host: 'api'}, body: null, replayable: true, destination: 'api', source: 'ingress'}
const ctx = {clock, signal: new AbortController().signal, canceller: {abort: () => undefined}, traceId: '0af7651916cd43dd8448eb211c80319c', traceFlags: '01', clientSpanId: 'b7ad6b7169203331', decision: {}, attempt: 1}
let answered = 0
const reply = {ok: () => answered++, fail: (e) => { throw e }}

function layered(setup) {
  const faults = new FaultSet(clock)
  setup(faults)
  return fault('callee', {faults, allowHeaders: () => false})(inner)
}

async function time(service) {
  for (let i = 0; i < 100_000; i++) service(req, ctx, reply) // warm-up: let the JIT settle
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) service(req, ctx, reply)
  // A layer that may inject (the header selector) answers a tick later.
  await new Promise((resolve) => setImmediate(resolve))
  const ns = Number(process.hrtime.bigint() - t0) / N
  if (answered !== 100_000 + N) throw new Error(`${answered} answers for ${100_000 + N} calls`)
  answered = 0
  return ns
}

const variants = [
  ['no fault layer', inner],
  ['layer, no faults', layered(() => {})],
  ['layer, fault on another service', layered((f) => f.add({service: 'cart', kind: 'abort', status: 503}))],
  ['layer, fault here not matching (header selector)', layered((f) => f.add({service: 'api', kind: 'abort', status: 503, header: {name: 'x-chaos', value: '1'}}))],
]
// Interleaved rounds, median of each: a busy neighbour affects every variant alike.
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const results = variants.map(() => [])
for (let r = 0; r < rounds; r++) for (let i = 0; i < variants.length; i++) results[i].push(await time(variants[i][1]))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const base = median(results[0])
console.log(`fault layer on requests no fault matches (${N.toLocaleString()} calls × ${rounds} rounds, node ${process.version})`)
for (let i = 0; i < variants.length; i++) {
  const ns = median(results[i])
  console.log(`  ${variants[i][0].padEnd(50)} ${ns.toFixed(1).padStart(7)} ns/req   +${(ns - base).toFixed(1)} ns over no layer`)
}
console.log('For scale: one mesh call costs the daemon a few hundred µs of CPU (see npm run bench).')
