// A chaos scenario: a timeline of faults to inject and clear, optional load to
// drive while it plays, and expectations that decide whether the run passed. This
// file reads and checks the YAML (every problem with its line:column); the runner plays it.
//
//   scenario.yaml ──parseDocument──▶ plain object ──checkScenario──▶ ChaosScenario | issues
//
// The shape (also in `mesh chaos --help`):
//   duration: 40s                              # how long the run lasts
//   load: {target: ingress, path: /, rps: 100} # optional; also method, headers, timeout, concurrency,
//                                              # after, ramp, arrivals, seed (the shape, as mesh load's flags)
//   timeline:
//     - at: 10s
//       name: slow-payments                    # optional: clear it, or name its phase, by this
//       inject: {service: payments, delay: 500ms, duration: 30s}   # a fault, as in mesh.yaml faults.inject
//     - at: 20s
//       inject: {service: cart, kill: 1}
//     - at: 30s
//       clear: slow-payments                   # a step's name, {service: NAME}, or all
//   expect:
//     - successRate >= 99%                     # overall
//     - {phase: 2, p99: <= 800ms}              # phase 2 = from the first step's time to the next's
//     - {phase: slow-payments, expect: successRate >= 50%}   # `>=` must be quoted as a value: use expect:
import {LineCounter, parseDocument, type Document} from 'yaml'
import {missingUnit, parseDuration} from '../config/duration.js'
import type {ConfigIssue} from '../config/types.js'
import {ARRIVALS, type Arrivals, type LoadShape, parseRamp, shapeOf} from '../load/arrival-schedule.js'
import {checkFault, notInMesh} from './fault-config.js'
import type {FaultSpec} from './fault.js'

export interface ChaosLoad {
  /** `ingress`, a service the ingress routes to, or a URL (as `mesh load`). */
  target: string
  path?: string
  /** Held from the end of the ramps to the end of the run. */
  rps?: number
  /** Idle `after`, then the ramps, then `rps` to the end of the run. */
  shape: LoadShape
  /** Of Poisson arrivals, to replay them. */
  seed?: number
  method: string
  headers: Record<string, string>
  /** A request taking longer counts as error 'timeout'. */
  timeoutMs: number
  concurrency?: number
}

export type ClearTarget = {step: string} | {service: string} | {all: true}

export type ChaosStep = {
  atMs: number
  name?: string
  /** Where the step is in the file, for messages. */
  line: number
} & ({action: 'inject'; fault: FaultSpec} | {action: 'clear'; clear: ClearTarget})

export const METRICS = ['successRate', 'errorRate', 'p50', 'p90', 'p95', 'p99', 'max', 'mean', 'requests', 'errors'] as const
export type Metric = (typeof METRICS)[number]
export type Comparison = '>=' | '<=' | '>' | '<' | '=='

export interface Expectation {
  /** As written, for the report: 'p99 <= 800ms'. */
  text: string
  /** 1-based phase, or the whole run. */
  phase: number | 'overall'
  metric: Metric
  op: Comparison
  /** Ratio 0..1 for rates, ms for latencies, a count for requests / errors. */
  value: number
  line: number
}

export interface ChaosScenario {
  file: string
  durationMs: number
  load?: ChaosLoad
  /** In time order (steps at the same time keep file order). */
  timeline: ChaosStep[]
  /** Phase i (1-based) runs from phaseStarts[i-1] to the next start, the last to durationMs. */
  phaseStarts: number[]
  expect: Expectation[]
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
const RATE_METRICS: readonly Metric[] = ['successRate', 'errorRate']
const COUNT_METRICS: readonly Metric[] = ['requests', 'errors']
const EXPECTATION = /^\s*([A-Za-z0-9]+)\s*(>=|<=|==|>|<)\s*(\S.*?)\s*$/
const TOP_KEYS = ['duration', 'load', 'timeline', 'expect']
const LOAD_KEYS = ['target', 'path', 'rps', 'after', 'ramp', 'arrivals', 'seed', 'method', 'headers', 'timeout', 'concurrency']
const STEP_KEYS = ['at', 'name', 'inject', 'clear']

type Path = Array<string | number>

/** Phase boundaries: 0 and every distinct step time inside the run. */
export function phaseStarts(timeline: Array<{atMs: number}>, durationMs: number): number[] {
  const starts = new Set<number>([0])
  for (const s of timeline) if (s.atMs > 0 && s.atMs < durationMs) starts.add(s.atMs)
  return [...starts].sort((a, b) => a - b)
}

/**
 * Check a scenario's text. `known` (services → versions, from the running mesh)
 * lets names be checked too. `scenario` only when there is no error.
 */
export function parseScenario(source: string, file: string, known?: Record<string, string[]>): {scenario?: ChaosScenario; issues: ConfigIssue[]} {
  const lineCounter = new LineCounter()
  const doc = parseDocument(source, {lineCounter, prettyErrors: false})
  const issues: ConfigIssue[] = []
  const at = (offset: number) => {
    const {line, col} = lineCounter.linePos(offset)
    return {line, column: col}
  }
  const lineOf = (path: Path) => position(doc, path, at).line
  const add = (path: Path, message: string) => issues.push({file, ...position(doc, path, at), path: formatPath(path), message, severity: 'error'})

  for (const e of doc.errors) {
    let message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
    // `p99: >= 5ms` is not YAML (a plain value cannot start with >): say how to write it.
    if (/block scalar/i.test(message)) message += `; quote a value that starts with > (">= 99%"), or write {phase: 2, expect: successRate >= 99%}`
    issues.push({file, ...at(e.pos[0]), path: '', message, severity: 'error'})
  }
  if (doc.errors.length) return {issues}
  const raw = doc.toJS() as unknown
  if (!isObject(raw)) {
    add([], 'expected a scenario with duration:, timeline: and optionally load: and expect:')
    return {issues}
  }
  for (const key of Object.keys(raw)) if (!TOP_KEYS.includes(key)) add([key], `unknown key; a scenario has ${TOP_KEYS.join(', ')}`)

  const durationMs = typeof raw.duration === 'string' || typeof raw.duration === 'number' ? parseDuration(raw.duration) : undefined
  if (raw.duration === undefined) add([], 'duration: is required (how long the run lasts, e.g. 40s)')
  else if (!durationMs) add(['duration'], `expected a positive duration such as 40s, got ${show(raw.duration)}${missingUnit(raw.duration)}`)

  // load
  let load: ChaosLoad | undefined
  if (raw.load !== undefined) {
    const l = raw.load
    if (!isObject(l)) add(['load'], 'expected {target: ingress, path: /, rps: 100}')
    else {
      for (const key of Object.keys(l)) if (!LOAD_KEYS.includes(key)) add(['load', key], `unknown key; load takes ${LOAD_KEYS.join(', ')}`)
      const target = l.target ?? 'ingress'
      if (typeof target !== 'string' || target === '') add(['load', 'target'], 'expected ingress, a service the ingress routes to, or a URL')
      if (l.path !== undefined && (typeof l.path !== 'string' || !l.path.startsWith('/'))) add(['load', 'path'], `expected a path starting with /, got ${show(l.path)}`)
      const rps = typeof l.rps === 'string' ? Number(l.rps.replace(/\/s$/, '')) : l.rps
      const rpsOk = typeof rps === 'number' && rps > 0 && Number.isFinite(rps)
      if (l.rps === undefined && l.ramp === undefined) add(['load'], 'load needs rps: (requests per second) or ramp: (FROM:TO/DURATION, e.g. 0:200/30s)')
      else if (l.rps !== undefined && !rpsOk) add(['load', 'rps'], `expected a positive number of requests per second, got ${show(l.rps)}`)
      const shape = durationMs && (rpsOk || (l.rps === undefined && l.ramp !== undefined)) ? loadShape(l, rpsOk ? (rps as number) : undefined, durationMs, add) : undefined
      if (l.seed !== undefined && !Number.isInteger(l.seed)) add(['load', 'seed'], `expected a whole number, got ${show(l.seed)}`)
      const method = l.method ?? 'GET'
      if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) add(['load', 'method'], `expected an HTTP method, got ${show(l.method)}`)
      const headers: Record<string, string> = {}
      if (l.headers !== undefined) {
        if (!isObject(l.headers)) add(['load', 'headers'], 'expected {name: value, …}')
        else for (const [k, v] of Object.entries(l.headers)) headers[k.toLowerCase()] = String(v)
      }
      const timeoutMs = l.timeout === undefined ? DEFAULT_REQUEST_TIMEOUT_MS : parseDuration(l.timeout as string)
      if (!timeoutMs) add(['load', 'timeout'], `expected a positive duration such as 5s, got ${show(l.timeout)}${missingUnit(l.timeout)}`)
      const concurrency = l.concurrency
      if (concurrency !== undefined && (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 1)) {
        add(['load', 'concurrency'], `expected a whole number of at least 1, got ${show(concurrency)}`)
      }
      load = {
        target: String(target),
        path: typeof l.path === 'string' ? l.path : undefined,
        rps: rpsOk ? (rps as number) : undefined,
        shape: shape ?? {segments: [], arrivals: 'uniform'},
        seed: typeof l.seed === 'number' ? l.seed : undefined,
        method: String(method).toUpperCase(),
        headers,
        timeoutMs: timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        concurrency: typeof concurrency === 'number' ? concurrency : undefined,
      }
    }
  }

  // timeline
  const timeline: ChaosStep[] = []
  const names = new Map<string, number>()
  if (raw.timeline !== undefined && !Array.isArray(raw.timeline)) add(['timeline'], 'expected a list of steps such as - {at: 10s, inject: {service: payments, delay: 500ms}}')
  const steps = Array.isArray(raw.timeline) ? raw.timeline : []
  steps.forEach((s, i) => {
    const p: Path = ['timeline', i]
    if (!isObject(s)) return add(p, 'expected a step such as {at: 10s, inject: {service: payments, abort: 503}}')
    for (const key of Object.keys(s)) if (!STEP_KEYS.includes(key)) add([...p, key], `unknown key; a step takes ${STEP_KEYS.join(', ')}`)
    const atMs = typeof s.at === 'string' || typeof s.at === 'number' ? parseDuration(s.at) : undefined
    if (s.at === undefined) add(p, 'a step needs at: (when it happens, from the start, e.g. 10s)')
    else if (atMs === undefined) add([...p, 'at'], `expected a duration from the start such as 10s, got ${show(s.at)}${missingUnit(s.at)}`)
    else if (durationMs && atMs >= durationMs) add([...p, 'at'], `${show(s.at)} is not before the end of the run (duration ${show(raw.duration)})`)
    let name: string | undefined
    if (s.name !== undefined) {
      if (typeof s.name !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(s.name)) add([...p, 'name'], `expected a name of letters, digits, dots, dashes, got ${show(s.name)}`)
      else if (names.has(s.name)) add([...p, 'name'], `"${s.name}" already names step ${names.get(s.name)! + 1}`)
      else names.set((name = s.name), i)
    }
    const base = {atMs: atMs ?? 0, name, line: lineOf(p)}
    if ((s.inject === undefined) === (s.clear === undefined)) return add(p, 'a step either injects a fault (inject: {…}) or clears faults (clear: NAME | {service: NAME} | all)')
    if (s.inject !== undefined) {
      const checked = checkFault(s.inject, {known})
      for (const pr of checked.problems) add([...p, 'inject', ...(pr.path ? [pr.path] : [])], pr.message)
      if (checked.spec) timeline.push({...base, action: 'inject', fault: checked.spec})
      return
    }
    const c = s.clear
    if (c === 'all') timeline.push({...base, action: 'clear', clear: {all: true}})
    else if (typeof c === 'string') {
      const target = names.get(c)
      if (target === undefined) add([...p, 'clear'], `no earlier step is named "${c}"${names.size ? ` (named: ${[...names.keys()].join(', ')})` : ''}; write clear: {service: NAME} or clear: all`)
      else if (!('inject' in (steps[target] as object))) add([...p, 'clear'], `step "${c}" injects nothing`)
      else timeline.push({...base, action: 'clear', clear: {step: c}})
    } else if (isObject(c) && typeof c.service === 'string' && Object.keys(c).length === 1) {
      if (known && !(c.service in known)) add([...p, 'clear', 'service'], notInMesh(c.service, Object.keys(known)))
      timeline.push({...base, action: 'clear', clear: {service: c.service}})
    } else add([...p, 'clear'], `expected a step's name, {service: NAME} or all, got ${show(c)}`)
  })
  // Stable: steps at the same time keep file order.
  timeline.sort((a, b) => a.atMs - b.atMs)
  const starts = phaseStarts(timeline, durationMs ?? Infinity)

  // expect
  const expect: Expectation[] = []
  if (raw.expect !== undefined && !Array.isArray(raw.expect)) add(['expect'], 'expected a list such as - successRate >= 99%')
  const expectations = Array.isArray(raw.expect) ? raw.expect : []
  if (expectations.length && !load) add(['expect'], 'expectations need load: to measure (add load: {target: ingress, rps: 50})')
  expectations.forEach((e, i) => {
    const p: Path = ['expect', i]
    const line = lineOf(p)
    if (typeof e === 'string') {
      const parsed = parseExpectation(e, 'overall', line)
      if (typeof parsed === 'string') add(p, parsed)
      else expect.push(parsed)
      return
    }
    if (!isObject(e)) return add(p, `expected "successRate >= 99%" or {phase: 2, p99: <= 800ms}, got ${show(e)}`)
    let phase: number | 'overall' = 'overall'
    if (e.phase !== undefined && e.phase !== 'overall') {
      const byName = typeof e.phase === 'string' ? names.get(e.phase) : undefined
      if (byName !== undefined) {
        const stepAt = timeline.find((s) => s.name === e.phase)?.atMs ?? 0
        phase = starts.indexOf(stepAt) + 1 || 1
      } else if (typeof e.phase === 'number' && Number.isInteger(e.phase) && e.phase >= 1 && e.phase <= starts.length) phase = e.phase
      else {
        add([...p, 'phase'], `expected a phase from 1 to ${starts.length}, a step's name, or overall; got ${show(e.phase)} (phases start at ${starts.map((s) => `${s / 1000}s`).join(', ')})`)
        return
      }
    }
    const metrics = Object.keys(e).filter((k) => k !== 'phase')
    if (metrics.length === 0) add(p, `name a metric: ${METRICS.join(', ')}, e.g. {phase: 2, p99: <= 800ms}`)
    for (const m of metrics) {
      // `expect:` holds whole expectations, the way to write `>=` without quotes in YAML.
      const texts = m === 'expect' ? (Array.isArray(e.expect) ? e.expect : [e.expect]).map(String) : [`${m} ${String(e[m])}`]
      for (const text of texts) {
        const parsed = parseExpectation(text, phase, line)
        if (typeof parsed === 'string') add([...p, m], parsed)
        else expect.push(parsed)
      }
    }
  })

  if (issues.length || !durationMs) return {issues: issues.sort((a, b) => a.line - b.line || a.column - b.column)}
  return {scenario: {file, durationMs, load, timeline, phaseStarts: starts, expect}, issues}
}

/**
 * The load's shape over the run: idle `after`, then each `ramp`, then `rps` to the end. A
 * problem is added at its key; undefined then (the scenario is refused anyway).
 */
function loadShape(l: Record<string, unknown>, rps: number | undefined, runMs: number, add: (path: Path, message: string) => void): LoadShape | undefined {
  let afterMs = 0
  if (l.after !== undefined) {
    const ms = typeof l.after === 'string' || typeof l.after === 'number' ? parseDuration(l.after) : undefined
    if (ms === undefined) return void add(['load', 'after'], `expected a duration to stay idle first, such as 10s, got ${show(l.after)}${missingUnit(l.after)}`)
    afterMs = ms
  }
  const ramps = l.ramp === undefined ? [] : Array.isArray(l.ramp) ? l.ramp : [l.ramp]
  if (ramps.length === 0 && l.ramp !== undefined) return void add(['load', 'ramp'], 'expected FROM:TO/DURATION (e.g. 0:200/30s) or a list of them')
  let usedMs = afterMs
  for (const [i, r] of ramps.entries()) {
    const at: Path = Array.isArray(l.ramp) ? ['load', 'ramp', i] : ['load', 'ramp']
    if (typeof r !== 'string' && typeof r !== 'number') return void add(at, `expected FROM:TO/DURATION such as 0:200/30s, got ${show(r)}`)
    const ramp = parseRamp(String(r))
    if (typeof ramp === 'string') return void add(at, ramp)
    usedMs += ramp.durationMs
  }
  if (usedMs > runMs || (usedMs === runMs && rps !== undefined)) {
    return void add(['load'], `after and ramp take ${usedMs / 1000}s, leaving ${rps !== undefined ? 'no time for rps' : 'less than their length'} in a run of ${runMs / 1000}s`)
  }
  if (l.arrivals !== undefined && !ARRIVALS.includes(l.arrivals as Arrivals)) return void add(['load', 'arrivals'], `expected ${ARRIVALS.join(' or ')}, got ${show(l.arrivals)}`)
  const shape = shapeOf({
    afterMs,
    ramps: ramps.map(String),
    rps,
    durationMs: rps === undefined ? undefined : runMs - usedMs,
    arrivals: (l.arrivals as Arrivals | undefined) ?? 'uniform',
  })
  if (typeof shape === 'string') return void add(['load'], shape)
  return shape
}

/** 'p99 <= 800ms' → an Expectation, or a message saying what is wrong. */
export function parseExpectation(text: string, phase: number | 'overall', line = 0): Expectation | string {
  const m = EXPECTATION.exec(text)
  if (!m) return `expected METRIC OP VALUE such as "successRate >= 99%" or "p99 <= 300ms", got ${show(text)}`
  const metric = m[1] as Metric
  if (!METRICS.includes(metric)) return `unknown metric ${show(m[1])}; expected one of ${METRICS.join(', ')}`
  const op = m[2] as Comparison
  const raw = m[3]
  let value: number | undefined
  if (RATE_METRICS.includes(metric)) {
    const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(raw)
    value = pct ? Number(pct[1]) / 100 : /^(0(\.\d+)?|1(\.0+)?)$/.test(raw) ? Number(raw) : undefined
    if (value === undefined || value > 1) return `${metric} compares with a percentage such as 99% (or a ratio 0..1), got ${show(raw)}`
  } else if (COUNT_METRICS.includes(metric)) {
    value = /^\d+$/.test(raw) ? Number(raw) : undefined
    if (value === undefined) return `${metric} compares with a whole number, got ${show(raw)}`
  } else {
    value = parseDuration(raw)
    if (value === undefined) return `${metric} compares with a duration such as 300ms, got ${show(raw)}`
  }
  const shown = `${metric} ${op} ${raw}`
  return {text: shown, phase, metric, op, value, line}
}

function position(doc: Document, path: Path, at: (offset: number) => {line: number; column: number}): {line: number; column: number} {
  // The deepest node that exists on the path: a missing key is reported at its parent.
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true)) as {range?: [number, number, number]} | null | undefined
    if (node?.range) return at(node.range[0])
  }
  return {line: 1, column: 1}
}

function formatPath(path: Path): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`
  return out
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v))
}
