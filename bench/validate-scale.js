// `node bench/validate-scale.js`: how the time of checking mesh.yaml grows with its size.
// Columns: the yaml library's own parse (what checking cost at least before the subset
// reader), the subset reader's (src/sim/config/yaml-subset.ts, the same AST), the whole
// check (read, ${VAR}, schema, cross-checks, lint) in wall time and in CPU time (CPU is
// the steadier figure on a shared machine: wall time counts the waits for a core).
// Checking is linear: each 2× in services should cost about 2× (the "×prev" column);
// quadratic work would show 4×. The test suite checks the same files for correctness only
// (test/config/large-files.test.ts, test/config/yaml-subset.test.ts), never for time.
//
// Env knobs: BENCH_SIZES (services, default "5000,10000,20000,40000,60000"; 60,000 is 10 MB).
import {LineCounter, parseDocument} from 'yaml'
import {fmt, table} from './lib.js'
import {parseConfig} from '../dist/sim/config/load-config.js'
import {parseSubset} from '../dist/sim/config/yaml-subset.js'

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

/** The best of `runs` runs: {wall, cpu} in ms (cpu: this process's user + system time). */
function best(runs, fn) {
  let wall = Infinity
  let cpu = Infinity
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    fn()
    const c = process.cpuUsage(c0)
    wall = Math.min(wall, performance.now() - t0)
    cpu = Math.min(cpu, (c.user + c.system) / 1000)
  }
  return {wall, cpu}
}

const sizes = (process.env.BENCH_SIZES ?? '5000,10000,20000,40000,60000').split(',').map(Number)
const rows = []
let prev
for (const n of sizes) {
  const source = bigMesh(n)
  const runs = n <= 20_000 ? 3 : 1
  const library = best(runs, () => parseDocument(source, {lineCounter: new LineCounter(), uniqueKeys: false}))
  const subset = best(runs, () => {
    if (!parseSubset(source, new LineCounter(), {uniqueKeys: false})) throw new Error('the subset reader left the bench file to the library')
  })
  let issues = 0
  const total = best(runs, () => {
    const r = parseConfig(source, '/tmp/bench/mesh.yaml', {})
    if (!r.config) throw new Error(`not valid: ${r.issues.find((i) => i.severity === 'error')?.message}`)
    issues = r.issues.length
  })
  const ms = (t) => `${fmt.int(t)} ms`
  rows.push([String(n), `${(source.length / 1e6).toFixed(1)} MB`, ms(library.wall), ms(subset.wall), ms(total.wall), ms(total.cpu), prev ? fmt.x(total.wall / prev) : '', String(issues)])
  prev = total.wall
}
console.log(table(['services', 'size', 'yaml library parse', 'subset read', 'check (total)', 'check CPU', '×prev', 'warnings'], rows))
