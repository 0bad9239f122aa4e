// `node bench/warm-up-profiles.js DIR [--top N]`: reads the CPU profiles bench/warm-up.js
// wrote with BENCH_WARM_CPU_PROF=DIR (one per process of the mesh) and shows, per process and
// per second from the start of the load, how busy it was and on what: GC, V8 compiling
// ((program) is mostly the compiler and the interpreter's entry), and its top functions in
// the first seconds against the rest. A cold mesh is busier per request in its first seconds.
import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {option} from './lib.js'

const dir = process.argv[2]
if (!dir) throw new Error('usage: node bench/warm-up-profiles.js DIR [--top N]')
const TOP = Number(option('--top', 12))
const {monotonicUs} = JSON.parse(readFileSync(path.join(dir, 'load-start.json'), 'utf8'))
const SECONDS = 10

for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const busy = new Array(SECONDS).fill(0)
  const gc = new Array(SECONDS).fill(0)
  const program = new Array(SECONDS).fill(0)
  const early = new Map()
  const late = new Map()
  let t = profile.startTime
  let before = 0
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    const dt = profile.timeDeltas[i + 1] ?? 0
    const second = Math.floor((t - monotonicUs) / 1e6)
    const node = byId.get(profile.samples[i])
    const name = node.callFrame.functionName || '(anonymous)'
    if (name === '(idle)') continue
    if (second < 0) {
      before += dt
      continue
    }
    if (second >= SECONDS) continue
    busy[second] += dt
    if (name === '(garbage collector)') gc[second] += dt
    if (name === '(program)') program[second] += dt
    const where = `${name} ${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`
    const m = second < 2 ? early : second >= 5 ? late : undefined
    if (m) m.set(where, (m.get(where) ?? 0) + dt)
  }
  const ms = (us) => (us / 1000).toFixed(0).padStart(4)
  console.log(`\n${file}: busy before the load ${ms(before)} ms`)
  console.log(`  second:        ${busy.map((_, i) => String(i).padStart(4)).join(' ')}`)
  console.log(`  busy ms:       ${busy.map(ms).join(' ')}`)
  console.log(`  GC ms:         ${gc.map(ms).join(' ')}`)
  console.log(`  (program) ms:  ${program.map(ms).join(' ')}`)
  const lateTotal = busy.slice(5).reduce((a, b) => a + b, 0) / 5
  const top = [...early].sort((a, b) => b[1] - a[1]).slice(0, TOP)
  console.log(`  top self time in 0–2 s (ms/s) against 5–10 s (ms/s); 5–10 s average busy ${ms(lateTotal)} ms/s:`)
  for (const [where, us] of top) console.log(`    ${(us / 2000).toFixed(1).padStart(7)} ${((late.get(where) ?? 0) / 5000).toFixed(1).padStart(7)}  ${where}`)
}
