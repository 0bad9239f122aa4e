// `node bench/validate-scale.js`: how the time of checking mesh.yaml grows with its size,
// and how much of it is the yaml library's own parse (the floor no checker can go under).
// Checking is linear: each 2× in services should cost about 2× (the "×prev" column);
// quadratic work would show 4×. The test suite checks the same files for correctness only
// (test/config/large-files.test.ts), never for time.
//
// Env knobs: BENCH_SIZES (services, default "5000,10000,20000,40000,80000").
import {LineCounter, parseDocument} from 'yaml'
import {fmt, table} from './lib.js'
import {parseConfig} from '../dist/sim/config/load-config.js'

/** N services in a binary call tree (s_i calls s_2i+1 and s_2i+2), a third of them with retries. */
export function bigMesh(n) {
  const out = ['name: big', 'ingress:', '  port: 8000', '  routes:', '    - {prefix: /, service: s0}', 'services:']
  for (let i = 0; i < n; i++) {
    const calls = [2 * i + 1, 2 * i + 2].filter((j) => j < n)
    out.push(`  s${i}:`, '    replicas: 2', `    env: {MODE: fast, LEVEL: "${i % 7}"}`, '    simulate:', '      latency: {p50: 5ms, p99: 20ms}')
    if (calls.length) out.push(`      calls: [${calls.map((j) => `{service: s${j}}`).join(', ')}]`)
    out.push(`    policy: {timeout: 2s${i % 3 === 0 ? ', retries: {attempts: 1}' : ''}}`)
  }
  return out.join('\n') + '\n'
}

function best(runs, fn) {
  let min = Infinity
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    fn()
    min = Math.min(min, performance.now() - t0)
  }
  return min
}

const sizes = (process.env.BENCH_SIZES ?? '5000,10000,20000,40000,80000').split(',').map(Number)
const rows = []
let prev
for (const n of sizes) {
  const source = bigMesh(n)
  const runs = n <= 20_000 ? 3 : 1
  const yamlMs = best(runs, () => parseDocument(source, {lineCounter: new LineCounter(), uniqueKeys: false}))
  let issues = 0
  const totalMs = best(runs, () => {
    const r = parseConfig(source, '/tmp/bench/mesh.yaml', {})
    if (!r.config) throw new Error(`not valid: ${r.issues.find((i) => i.severity === 'error')?.message}`)
    issues = r.issues.length
  })
  rows.push([String(n), `${(source.length / 1e6).toFixed(1)} MB`, `${fmt.int(yamlMs)} ms`, `${fmt.int(totalMs)} ms`, `${fmt.int(totalMs - yamlMs)} ms`, prev ? fmt.x(totalMs / prev) : '', String(issues)])
  prev = totalMs
}
console.log(table(['services', 'size', 'yaml parse', 'check (total)', 'ours', '×prev', 'warnings'], rows))
