// Summarises a V8 .cpuprofile: where the time went, by function (self time) and, for
// the project's own code, "attributed" time — each sample charged to the nearest
// meshsim frame on its stack, so time spent inside Node or undici on behalf of a
// meshsim function (a JSON.stringify, a stream write, an AbortController) counts
// against the function that asked for it. Lines are mapped back to src/**/*.ts
// through the build's source maps.
//
//   node bench/profile-summary.js FILE.cpuprofile [--requests N] [--top 25]
import {existsSync, readFileSync} from 'node:fs'
import {SourceMap} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {REPO} from './lib.js'

const maps = new Map()
function sourceMapFor(file) {
  if (!maps.has(file)) {
    let map
    try {
      const mapFile = file + '.map'
      if (existsSync(mapFile)) map = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')))
    } catch {}
    maps.set(file, map)
  }
  return maps.get(file)
}

const isProject = (url) => url.includes('/dist/sim/') || url.includes('/dist/commands/')

export function where(frame) {
  const {url, lineNumber, columnNumber} = frame
  if (!url) return ''
  if (url.startsWith('node:')) return `${url}:${lineNumber + 1}`
  let file = url.startsWith('file://') ? fileURLToPath(url) : url
  if (isProject(url)) {
    const entry = sourceMapFor(file)?.findEntry(lineNumber, columnNumber)
    if (entry?.originalSource) {
      const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource)
      return `${path.relative(REPO, src)}:${entry.originalLine + 1}`
    }
  }
  const nm = file.lastIndexOf('node_modules/')
  if (nm >= 0) return file.slice(nm + 'node_modules/'.length) + `:${lineNumber + 1}`
  return `${path.relative(REPO, file)}:${lineNumber + 1}`
}

function category(frame) {
  const {url, functionName} = frame
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)') return 'program (native, unattributed)'
  if (isProject(url)) return 'meshsim code'
  if (url.includes('node_modules/undici/')) return 'undici'
  if (url.includes('node_modules/')) return 'other node_modules'
  if (url.startsWith('node:')) return 'node core (js)'
  return 'native / builtins'
}

export function summarise(profile, {requests, top = 25} = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // Time per sample: the delta to the next sample (the last one gets the mean).
  const {samples, timeDeltas} = profile
  const total = profile.endTime - profile.startTime
  const mean = total / Math.max(1, samples.length)
  const self = new Map()
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : mean
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt)
  }
  const key = (f) => `${f.functionName || '(anonymous)'}  ${where(f)}`
  const bySelf = new Map()
  const byCategory = new Map()
  const attributed = new Map()
  const inclusive = new Map()
  let busy = 0
  for (const [id, us] of self) {
    const f = nodes.get(id).callFrame
    const cat = category(f)
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us)
    if (cat === 'idle') continue
    busy += us
    bySelf.set(key(f), (bySelf.get(key(f)) ?? 0) + us)
    // Nearest project frame up the stack, and every project function on it (once each).
    let cur = id
    let charged = false
    const seen = new Set()
    while (cur !== undefined) {
      const cf = nodes.get(cur).callFrame
      if (isProject(cf.url)) {
        const k = key(cf)
        if (!charged) {
          attributed.set(k, (attributed.get(k) ?? 0) + us)
          charged = true
        }
        if (!seen.has(k)) {
          seen.add(k)
          inclusive.set(k, (inclusive.get(k) ?? 0) + us)
        }
      }
      cur = parent.get(cur)
    }
  }
  const perReq = (us) => (requests ? ` ${(us / requests).toFixed(2).padStart(7)} µs/req` : '')
  const pct = (us, of) => `${((100 * us) / of).toFixed(1).padStart(5)}%`
  const rows = (map, of, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `  ${pct(us, of)} ${(us / 1000).toFixed(0).padStart(7)} ms${perReq(us)}  ${k}`)
      .join('\n')
  const out = []
  out.push(`profile: ${(total / 1e6).toFixed(1)} s wall, ${(busy / 1e6).toFixed(2)} s busy (not idle), ${samples.length} samples` + (requests ? `, ${requests} requests → ${(busy / requests).toFixed(1)} µs busy per request` : ''))
  out.push('\nby category (share of busy time):')
  out.push(rows(new Map([...byCategory].filter(([k]) => k !== 'idle')), busy, 20))
  out.push(`\ntop ${top} functions by self time (share of busy time):`)
  out.push(rows(bySelf, busy, top))
  out.push(`\nmeshsim functions by attributed time (self + non-meshsim callees; share of busy time):`)
  out.push(rows(attributed, busy, top))
  out.push(`\nmeshsim functions by inclusive time (share of busy time):`)
  out.push(rows(inclusive, busy, top))
  return out.join('\n')
}

/** Who calls `name` (self time of frames named so, by their call stacks `depth` frames up). */
export function callers(profile, name, depth = 6) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const {samples, timeDeltas} = profile
  const stacks = new Map()
  let total = 0
  for (let i = 0; i < samples.length; i++) {
    let id = samples[i]
    // Charge the sample to the stack above the first frame named `name` (self or below it).
    let cur = id
    while (cur !== undefined && nodes.get(cur).callFrame.functionName !== name) cur = parent.get(cur)
    if (cur === undefined) continue
    const dt = timeDeltas[i + 1] ?? 0
    total += dt
    const chain = []
    for (let up = parent.get(cur); up !== undefined && chain.length < depth; up = parent.get(up)) {
      const f = nodes.get(up).callFrame
      chain.push(`${f.functionName || '(anon)'} ${where(f)}`)
    }
    const k = chain.join('\n        ← ')
    stacks.set(k, (stacks.get(k) ?? 0) + dt)
  }
  return [`${name}: ${(total / 1000).toFixed(0)} ms inclusive`, ...[...stacks].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(6)} ms  ← ${k}`)].join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2)
  const file = args.find((a) => !a.startsWith('--'))
  if (!file) {
    console.error('usage: node bench/profile-summary.js FILE.cpuprofile [--requests N] [--top N]')
    process.exit(2)
  }
  const opt = (name) => {
    const i = args.indexOf(name)
    return i >= 0 ? Number(args[i + 1]) : undefined
  }
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const ci = args.indexOf('--callers')
  if (ci >= 0) console.log(callers(profile, args[ci + 1], opt('--depth') ?? 6))
  else console.log(summarise(profile, {requests: opt('--requests'), top: opt('--top') ?? 25}))
}
