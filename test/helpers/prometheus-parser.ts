// A strict parser for the Prometheus text exposition format 0.0.4, shared by the
// unit test of the renderer and the integration test of a live mesh's /metrics.

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}
export interface Family {
  name: string
  type?: string
  help?: string
  samples: Sample[]
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/

/** A strict parser for the Prometheus text format 0.0.4; throws on anything out of spec. */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const families = new Map<string, Family>()
  const closed = new Set<string>()
  let current: string | undefined
  const familyOf = (sample: string): string => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = sample.slice(0, -suffix.length)
      if (sample.endsWith(suffix) && families.get(base)?.type === 'histogram') return base
    }
    return sample
  }
  const enter = (name: string) => {
    if (current !== name) {
      if (current) closed.add(current)
      if (closed.has(name)) throw new Error(`family ${name} is not contiguous`)
      current = name
    }
    let f = families.get(name)
    if (!f) families.set(name, (f = {name, samples: []}))
    return f
  }
  text.slice(0, -1).split('\n').forEach((line, n) => {
    const where = `line ${n + 1}: ${line}`
    if (line === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
      if (!m) return
      const f = enter(m[2])
      if (m[1] === 'HELP') {
        if (f.help !== undefined) throw new Error(`second HELP, ${where}`)
        if (/\\[^\\n]/.test(m[3].replace(/\\\\/g, ''))) throw new Error(`bad escape in HELP, ${where}`)
        f.help = m[3]
      } else {
        if (f.type !== undefined) throw new Error(`second TYPE, ${where}`)
        if (f.samples.length) throw new Error(`TYPE after samples, ${where}`)
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad type, ${where}`)
        f.type = m[3]
      }
      return
    }
    let rest = line
    const name = METRIC.exec(rest)?.[0]
    if (!name) throw new Error(`bad metric name, ${where}`)
    rest = rest.slice(name.length)
    const labels: Record<string, string> = {}
    if (rest.startsWith('{')) {
      rest = rest.slice(1)
      while (!rest.startsWith('}')) {
        const label = LABEL.exec(rest)?.[0]
        if (!label) throw new Error(`bad label name, ${where}`)
        rest = rest.slice(label.length)
        if (!rest.startsWith('="')) throw new Error(`expected =", ${where}`)
        rest = rest.slice(2)
        let value = ''
        for (;;) {
          const ch = rest[0]
          if (ch === undefined || ch === '\n') throw new Error(`unterminated label value, ${where}`)
          if (ch === '"') break
          if (ch === '\\') {
            const esc = rest[1]
            if (esc === '\\') value += '\\'
            else if (esc === '"') value += '"'
            else if (esc === 'n') value += '\n'
            else throw new Error(`bad escape \\${esc}, ${where}`)
            rest = rest.slice(2)
          } else {
            value += ch
            rest = rest.slice(1)
          }
        }
        rest = rest.slice(1)
        if (label in labels) throw new Error(`duplicate label ${label}, ${where}`)
        labels[label] = value
        if (rest.startsWith(',')) rest = rest.slice(1)
        else if (!rest.startsWith('}')) throw new Error(`expected , or }, ${where}`)
      }
      rest = rest.slice(1)
    }
    const m = /^ (\S+)( -?\d+)?$/.exec(rest)
    if (!m) throw new Error(`bad value, ${where}`)
    const raw = m[1]
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw)
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad number ${raw}, ${where}`)
    const f = enter(familyOf(name))
    if (f.type === undefined) throw new Error(`sample before TYPE, ${where}`)
    f.samples.push({name, labels, value})
  })
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, {buckets: Array<[number, number]>; sum?: number; count?: number}>()
  for (const s of f.samples) {
    const {le, ...rest} = s.labels
    const key = JSON.stringify(rest)
    let g = groups.get(key)
    if (!g) groups.set(key, (g = {buckets: []}))
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`)
      g.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value])
    } else if (s.name === `${f.name}_sum`) g.sum = s.value
    else if (s.name === `${f.name}_count`) g.count = s.value
    else throw new Error(`${f.name}: unexpected sample ${s.name}`)
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${f.name}${key}: _sum or _count missing`)
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i][0] > g.buckets[i - 1][0])) throw new Error(`${f.name}${key}: le not increasing`)
      if (g.buckets[i][1] < g.buckets[i - 1][1]) throw new Error(`${f.name}${key}: buckets not cumulative`)
    }
    const inf = g.buckets.at(-1)
    if (!inf || inf[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`)
    if (inf[1] !== g.count) throw new Error(`${f.name}${key}: +Inf ${inf[1]} != _count ${g.count}`)
  }
}

/** Sum of a Prometheus counter's samples whose labels include `match`. */
export function sumSeries(text: string, name: string, match: Record<string, string>): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += Number(line.split(' ').pop())
  }
  return sum
}
