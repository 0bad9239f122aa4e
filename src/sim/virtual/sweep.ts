// What-if sweeps (`mesh sim --vary KEY=v1,v2 …`): the grid of every combination of the
// values given, each cell one run of the same mesh.yaml with those keys set, the same seed
// and flags otherwise; then one row per cell of the metrics asked for.
//
//   --vary services.payments.policy.retries.attempts=0,1,3 --vary load.rps=500,1000
//     ──▶ 6 cells: {attempts 0, rps 500}, {attempts 0, rps 1000}, {attempts 1, rps 500}, …
//
// A key is a dotted path into mesh.yaml, checked against the JSON Schema `mesh schema`
// prints (a misspelt one is refused with did-you-mean), or one of the load's (load.rps,
// load.duration, load.arrivals). Its value is set in the YAML document before any check,
// so a value the key does not take is refused with the words and the line `mesh validate`
// gives.
import {isMap, isPair, isScalar, isSeq, type Document, type Node, Pair, parseDocument, Scalar, YAMLMap} from 'yaml'
import {parseDuration} from '../config/duration.js'
import {matchRoute} from '../config/ingress-routes.js'
import {ConfigError} from '../config/config-error.js'
import {suggestion} from '../config/did-you-mean.js'
import {meshJsonSchema} from '../config/json-schema.js'
import {parseConfig} from '../config/load-config.js'
import type {MeshConfig} from '../config/types.js'
import {MeshError, serviceNotFound} from '../errors.js'
import {ARRIVALS, type LoadShape, type ShapeRequest, shapeOf} from '../load/arrival-schedule.js'
import {type UnstableService, withInstancesNeeded} from './capacity-needs.js'
import type {SimResult, SimServiceStats} from './sim-result.js'
import {canonical, roundNumber} from './stable-json.js'

export interface VaryAxis {
  /** As written: `services.payments.policy.retries.attempts`, `load.rps`. */
  key: string
  /** Each value as written; YAML decides its type (`3` a number, `300ms` a duration, `{…}` a map). */
  values: string[]
}

/** The load's keys a sweep can vary (the rest of the load comes from the flags). */
export const LOAD_KEYS = ['load.rps', 'load.duration', 'load.arrivals'] as const

function badVary(message: string, hints: string[] = []): MeshError {
  return new MeshError('MESH_BAD_FLAG', message, {
    hints: [...hints, 'Write --vary KEY=V1,V2,…, e.g. --vary services.payments.policy.retries.attempts=0,1,3 --vary load.rps=500,1000'],
  })
}

/**
 * Values split at commas outside brackets, braces and quotes, so a flow map or list can
 * be one value: `policy.retries={attempts: 1, on: [5xx]},{attempts: 3}`.
 */
export function splitValues(text: string): string[] {
  const out: string[] = []
  let depth = 0
  let quote: string | undefined
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (quote) {
      if (ch === quote) quote = undefined
    } else if (ch === '"' || ch === "'") quote = ch
    else if (ch === '[' || ch === '{') depth++
    else if (ch === ']' || ch === '}') depth--
    else if (ch === ',' && depth === 0) {
      out.push(text.slice(start, i).trim())
      start = i + 1
    }
  }
  out.push(text.slice(start).trim())
  return out
}

/** `--vary` as given → the grid's axes (one per key, in order; a key twice is an error). */
export function parseVary(texts: readonly string[]): VaryAxis[] {
  const axes: VaryAxis[] = []
  for (const text of texts) {
    const eq = text.indexOf('=')
    const key = eq < 0 ? text.trim() : text.slice(0, eq).trim()
    if (eq < 0 || key === '') throw badVary(`--vary "${text}" has no KEY=VALUES.`)
    const values = splitValues(text.slice(eq + 1))
    if (values.some((v) => v === '')) throw badVary(`--vary ${text}: an empty value (two commas, or one at the end).`)
    if (axes.some((a) => a.key === key)) throw badVary(`--vary ${key} is given twice: give all its values in one --vary, separated by commas.`)
    if (new Set(values).size !== values.length) throw badVary(`--vary ${text}: a value is given twice.`)
    axes.push({key, values})
  }
  return axes
}

/** One cell of the grid: a value for each axis, in the axes' order. */
export type SweepCell = Array<{key: string; value: string}>

/** Every combination, the first axis varying slowest (as nested loops, as the table reads). */
export function sweepCells(axes: readonly VaryAxis[]): SweepCell[] {
  let cells: SweepCell[] = [[]]
  for (const axis of axes) cells = cells.flatMap((cell) => axis.values.map((value) => [...cell, {key: axis.key, value}]))
  return cells
}

export const MAX_CELLS = 1000

// ---------------------------------------------------------------- keys against the schema

type SchemaNode = {
  properties?: Record<string, SchemaNode>
  additionalProperties?: SchemaNode | boolean
  items?: SchemaNode
  anyOf?: SchemaNode[]
  oneOf?: SchemaNode[]
  [k: string]: unknown
}

function branches(node: SchemaNode): SchemaNode[] {
  return [node, ...(node.anyOf ?? []).flatMap(branches), ...(node.oneOf ?? []).flatMap(branches)]
}

let schemaCache: SchemaNode | undefined

/**
 * Refuses a key the schema does not have (with the closest key it does have at that
 * level), a service or version that is not in the file, and a load key that is not one of
 * LOAD_KEYS. Values are the config checks' business, not this.
 */
export function checkVaryKey(key: string, config: MeshConfig): void {
  const path = key.split('.')
  if (path[0] === 'load') {
    if (!(LOAD_KEYS as readonly string[]).includes(key)) throw badVary(`--vary ${key}: the load has no key "${path.slice(1).join('.')}"${suggestion(key, LOAD_KEYS)}`, [`The load's keys: ${LOAD_KEYS.join(', ')}`])
    return
  }
  if (path.some((seg) => seg === '')) throw badVary(`--vary ${key}: an empty part in the key (two dots, or one at an end).`)
  const schema = (schemaCache ??= meshJsonSchema() as SchemaNode)
  let nodes = [schema]
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const at = path.slice(0, i).join('.')
    const here = nodes.flatMap(branches)
    if (at === 'services') {
      const names = config.services.map((s) => s.name)
      if (!names.includes(seg)) throw serviceNotFound(seg, names, [`--vary ${key} names it.`])
    }
    if (i === 3 && path[0] === 'services' && path[2] === 'versions') {
      const names = config.services.find((s) => s.name === path[1])?.versions.map((v) => v.name) ?? []
      if (!names.includes(seg)) {
        throw new MeshError('MESH_VERSION_NOT_FOUND', `--vary ${key}: service ${path[1]} has no version "${seg}"${suggestion(seg, names) || '.'}`, {hints: [`Its versions: ${names.join(', ')}`]})
      }
    }
    const next: SchemaNode[] = []
    for (const n of here) {
      const named = n.properties?.[seg]
      if (named) next.push(named)
      else if (typeof n.additionalProperties === 'object') next.push(n.additionalProperties)
      else if (n.items && /^\d+$/.test(seg)) next.push(n.items)
    }
    if (next.length === 0) {
      const known = [...new Set(here.flatMap((n) => Object.keys(n.properties ?? {})))]
      const top = i === 0 ? [...known, 'load'] : known
      const where = at === '' ? 'mesh.yaml' : at
      if (top.length === 0 && !here.some((n) => n.items)) throw badVary(`--vary ${key}: ${where} is a value, not a map: it has no key "${seg}".`)
      throw badVary(`--vary ${key}: ${where} has no key "${seg}"${suggestion(seg, top) || '.'}`, top.length ? [`Its keys: ${top.join(', ')}`] : [])
    }
    nodes = next
  }
}

// ---------------------------------------------------------------- values into the document

/** Every node of a value parsed from the flag placed at `range` (the line:column it replaces). */
function placeAt(node: unknown, range: Node['range']): void {
  if (isPair(node)) {
    placeAt(node.key, range)
    placeAt(node.value, range)
    return
  }
  if (isMap(node) || isSeq(node)) for (const item of node.items) placeAt(item, range)
  if (node && typeof node === 'object' && 'range' in node) (node as {range: Node['range']}).range = range
}

function keyOf(pair: Pair): string | undefined {
  return isScalar(pair.key) ? String(pair.key.value) : undefined
}

/**
 * Sets `path` to `text` (read as YAML) in the document, creating the maps on the way that
 * the file leaves out. The new nodes take the position of what they replace, else of the
 * closest map written in the file, so an issue points at a line of the user's file.
 */
export function setIn(doc: Document, path: readonly string[], text: string): void {
  const parsed = parseDocument(text)
  const value: unknown = parsed.contents ?? new Scalar(null)
  let parent: unknown = doc.contents
  let range = (doc.contents as Node | null)?.range
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const last = i === path.length - 1
    if (isSeq(parent)) {
      const index = Number(seg)
      if (!Number.isInteger(index) || index < 0 || index >= parent.items.length) {
        throw badVary(`--vary ${path.join('.')}: ${path.slice(0, i).join('.')} has ${parent.items.length} item(s); "${seg}" is not the index of one (0 to ${parent.items.length - 1}).`)
      }
      const item = parent.items[index] as Node
      if (last) {
        placeAt(value, item?.range ?? range)
        parent.items[index] = value
        return
      }
      range = item?.range ?? range
      parent = item
      continue
    }
    if (!isMap(parent)) throw badVary(`--vary ${path.join('.')}: ${path.slice(0, i).join('.')} is not a map in the file, so it has no key "${seg}".`)
    let pair = parent.items.find((p) => keyOf(p as Pair) === seg) as Pair | undefined
    if (!pair) {
      pair = new Pair(new Scalar(seg), null)
      placeAt(pair.key, range)
      parent.items.push(pair)
    }
    const here = pair.value as Node | null
    if (here?.range) range = here.range
    if (last) {
      placeAt(value, range)
      pair.value = value
      return
    }
    // A key written with no value (`payments:`) is an empty map to set inside.
    if (here === null || (isScalar(here) && here.value === null)) {
      const map = new YAMLMap()
      placeAt(map, range)
      pair.value = map
    }
    parent = pair.value
  }
}

/**
 * mesh.yaml's text with a cell's config keys set, checked as `mesh validate` checks it:
 * a ConfigError (`mesh.yaml:14:7 services.payments.policy.retries.attempts: expected …`)
 * when the file or a value set is wrong.
 */
export function configFor(source: string, file: string, cell: SweepCell, env: NodeJS.ProcessEnv = process.env): MeshConfig {
  const keys = cell.filter((c) => !c.key.startsWith('load.'))
  const parsed = parseConfig(source, file, env, {edit: keys.length ? (doc) => keys.forEach((c) => setIn(doc, c.key.split('.'), c.value)) : undefined})
  if (!parsed.config) {
    const error = new ConfigError(parsed.issues)
    const set = keys.map((c) => `${c.key}=${c.value}`).join(' ')
    if (set) error.hints.unshift(`In the sweep's cell ${set} (--vary).`)
    throw error
  }
  return parsed.config
}

/** The load of a cell: the flags' with the cell's load keys in place of theirs. */
export function loadFor(base: ShapeRequest, cell: SweepCell): LoadShape {
  const request: ShapeRequest = {...base}
  for (const {key, value} of cell) {
    if (key === 'load.rps') {
      const rps = Number(value)
      if (!(rps > 0) || !Number.isFinite(rps)) throw badVary(`--vary load.rps: "${value}" is not a positive number of requests per second.`)
      request.rps = rps
    } else if (key === 'load.duration') {
      const ms = parseDuration(value)
      if (ms === undefined || !(ms > 0)) throw badVary(`--vary load.duration: "${value}" is not a positive duration such as 30s or 2m.`)
      request.durationMs = ms
    } else if (key === 'load.arrivals') {
      if (!(ARRIVALS as readonly string[]).includes(value)) throw badVary(`--vary load.arrivals: "${value}" is not ${ARRIVALS.join(' or ')}.`)
      request.arrivals = value as ShapeRequest['arrivals']
    }
  }
  const shape = shapeOf(request)
  if (typeof shape === 'string') throw badVary(`the sweep's cell ${cell.map((c) => `${c.key}=${c.value}`).join(' ')}: ${shape}.`)
  return shape
}

// ---------------------------------------------------------------- metrics of a cell

/** The figures of a service a sweep can compare (SimServiceStats' numbers). */
export const SERVICE_METRICS = [
  'requests', 'successRate', 'actualRequests', 'actualSuccessRate', 'meanMs', 'p50', 'p95', 'p99', 'p999', 'retries',
  'retriesBudgetDenied', 'ejections', 'breakerRefusals', 'rateLimited', 'queueMsMean', 'serviceMsMean', 'utilisation',
] as const satisfies ReadonlyArray<keyof SimServiceStats>
export type ServiceMetric = (typeof SERVICE_METRICS)[number]

/** The run's own figures. */
export const RUN_METRICS = ['ingressRequests', 'hopRequests'] as const
export type RunMetric = (typeof RUN_METRICS)[number]

export const DEFAULT_METRICS = ['successRate', 'p50', 'p99', 'retries']

/** A column of the comparison: a run figure, or a service's figure. */
export type MetricColumn = {label: string; metric: RunMetric} | {label: string; metric: ServiceMetric; service: string}

/**
 * `--metrics` → columns. `p99` is the entry service's (the one a plain run's requests enter:
 * the ingress's route for `/`, else the first service), `payments.p99` that service's.
 */
export function metricColumns(names: readonly string[], config: MeshConfig): MetricColumn[] {
  const services = config.services.map((s) => s.name)
  const entry = matchRoute(config.ingress?.routes ?? [], '/')?.service ?? services[0]
  const all = [...SERVICE_METRICS, ...RUN_METRICS]
  const columns: MetricColumn[] = []
  for (const raw of names) {
    const name = raw.trim()
    const dot = name.lastIndexOf('.')
    const metric = dot < 0 ? name : name.slice(dot + 1)
    const service = dot < 0 ? undefined : name.slice(0, dot)
    if (service !== undefined && !services.includes(service)) throw serviceNotFound(service, services, [`--metrics ${name} names it.`])
    if ((RUN_METRICS as readonly string[]).includes(metric) && service === undefined) {
      columns.push({label: metric, metric: metric as RunMetric})
      continue
    }
    if (!(SERVICE_METRICS as readonly string[]).includes(metric)) {
      throw new MeshError('MESH_BAD_FLAG', `--metrics: no metric "${metric}"${suggestion(metric, all) || '.'}`, {
        hints: [`Metrics: ${all.join(', ')}; SERVICE.METRIC for a service other than the entry (e.g. payments.p99).`],
      })
    }
    columns.push({label: service !== undefined ? `${service}.${metric}` : metric, metric: metric as ServiceMetric, service: service ?? entry})
  }
  return columns
}

export function metricValue(result: SimResult, column: MetricColumn): number | undefined {
  if (!('service' in column)) return result[column.metric]
  return result.services.find((s) => s.service === column.service)?.[column.metric]
}

/** How a metric reads: a time, a ratio, or a count. */
export function metricKind(metric: string): 'ms' | 'ratio' | 'count' {
  if (metric === 'successRate' || metric === 'actualSuccessRate' || metric === 'utilisation') return 'ratio'
  if (metric === 'meanMs' || /^p\d+$/.test(metric) || metric === 'queueMsMean' || metric === 'serviceMsMean') return 'ms'
  return 'count'
}

// ---------------------------------------------------------------- the sweep's result

export interface SweepCellResult {
  /** The cell's value of each varied key, as written. */
  values: Record<string, string>
  metrics: Record<string, number | null>
  /** As the run's, with the instances each service had and the fewest it needs at this load. */
  unstable: UnstableService[]
  /** The run, without its time series (the sweep's JSON would be mostly series). */
  result: Omit<SimResult, 'series'>
}

export interface SweepResult {
  seed: number
  vary: VaryAxis[]
  metrics: string[]
  cells: SweepCellResult[]
}

/** A cell's row and result, its numbers rounded as `--json` rounds a run's (stable-json.ts): the same bytes on any machine. */
export function cellResult(cell: SweepCell, result: SimResult, columns: readonly MetricColumn[], config: MeshConfig): SweepCellResult {
  const {series: _series, ...rest} = result
  const metric = (col: MetricColumn) => {
    const v = metricValue(result, col)
    return v === undefined ? null : roundNumber(v)
  }
  return {
    values: Object.fromEntries(cell.map((c) => [c.key, c.value])),
    metrics: Object.fromEntries(columns.map((col) => [col.label, metric(col)])),
    unstable: canonical(withInstancesNeeded(config, result.unstable)) as UnstableService[],
    result: canonical(rest) as Omit<SimResult, 'series'>,
  }
}

/** '6 cells (3 × 2)' */
export function describeGrid(axes: readonly VaryAxis[]): string {
  const n = axes.reduce((p, a) => p * a.values.length, 1)
  return `${n} cell${n === 1 ? '' : 's'}${axes.length > 1 ? ` (${axes.map((a) => a.values.length).join(' × ')})` : ''}`
}
