// Fitted models written into mesh.yaml as `simulate:` blocks beside each service's `command:`.
// The yaml library finds where (the ranges of the service's keys); the text is then edited only
// there, so every other byte of the file (comments, their alignment, quoting, flow maps) stays
// as the user wrote it — re-serialising the whole document would reformat it.
import {Document, isMap, isPair, isScalar, type Node, type Pair, parseDocument, type YAMLMap} from 'yaml'
import {formatDuration} from '../config/duration.js'
import type {FittedModel} from './model-fit.js'

/** What the fit cannot measure, kept from a `simulate:` block the fit replaces. */
const KEPT_KEYS = ['concurrency', 'responseSize', 'coldStart', 'isolated', 'seed']

/** The comment line that opens a block --fit wrote: a later fit replaces it with the block. */
export const FITTED_MARK = 'fitted by mesh sim --fit'

export interface ModelToWrite {
  service: string
  model: FittedModel
  /** Said on the comment line above the block, after FITTED_MARK. */
  comment: string
}

export interface ModelEdit {
  service: string
  /** 1-based line of mesh.yaml where the edit starts. */
  line: number
  removed: string[]
  added: string[]
}

export interface ModelsWritten {
  text: string
  edits: ModelEdit[]
  notWritten: Array<{service: string; why: string}>
}

/** A model as mesh.yaml writes it, leaving out what is the schema's default. */
export function simulateBlock(model: FittedModel): Record<string, unknown> {
  const block: Record<string, unknown> = {latency: latencyValue(model.latency)}
  if (model.errorRate > 0) {
    block.errorRate = model.errorRate
    if (model.errorStatus !== 500) block.errorStatus = model.errorStatus
  }
  if (model.callErrorStatus !== undefined && model.callErrorStatus !== 500) block.callErrorStatus = model.callErrorStatus
  if (model.calls.length > 0) {
    block.calls = model.calls.map((c) => ({
      service: c.service,
      ...(c.probability < 1 ? {probability: c.probability} : {}),
      ...(c.path === '/' ? {} : {path: c.path}),
      ...(c.method === 'GET' ? {} : {method: c.method}),
    }))
  }
  if (model.callMode === 'parallel' && model.calls.length > 1) block.callMode = 'parallel'
  return block
}

function latencyValue(latency: FittedModel['latency']): unknown {
  switch (latency.distribution) {
    case 'empirical':
      return {distribution: 'empirical', samples: (latency.samplesMs ?? []).map(formatDuration)}
    case 'exponential':
    case 'constant':
      return {distribution: latency.distribution, mean: formatDuration(latency.meanMs ?? latency.p50Ms)}
    default:
      return latency.p99Ms > latency.p50Ms ? {p50: formatDuration(latency.p50Ms), p99: formatDuration(latency.p99Ms)} : formatDuration(latency.p50Ms)
  }
}

/** `source` (a mesh.yaml) with each model's block beside its service's `command:`, replacing a `simulate:` there. */
export function writeModels(source: string, models: readonly ModelToWrite[]): ModelsWritten {
  const doc = parseDocument(source, {uniqueKeys: false})
  const services = doc.get('services', true)
  const notWritten: ModelsWritten['notWritten'] = []
  const splices: Array<{service: string; start: number; end: number; text: string}> = []
  for (const {service, model, comment} of models) {
    const entry = isMap(services) ? services.items.find((p) => keyOf(p) === service) : undefined
    const map = entry?.value
    if (!isMap(map) || map.flow) {
      notWritten.push({service, why: `services.${service} is not a block mapping in the file: write its simulate: block by hand`})
      continue
    }
    const command = map.items.find((p) => keyOf(p) === 'command')
    const keyStart = (command?.key as Node | undefined)?.range?.[0]
    const valueEnd = (command?.value as Node | undefined)?.range?.[1]
    if (keyStart === undefined || valueEnd === undefined) {
      notWritten.push({service, why: `services.${service} has no command: of its own (mesh sim's model goes beside a service-level command:)`})
      continue
    }
    const lineStart = source.lastIndexOf('\n', keyStart - 1) + 1
    const indent = source.slice(lineStart, keyStart)
    if (indent.trim() !== '') {
      notWritten.push({service, why: `services.${service}.command: does not start its line: write its simulate: block by hand`})
      continue
    }
    const old = map.items.find((p) => keyOf(p) === 'simulate')
    const text = renderBlock(model, comment, indent, old && isMap(old.value) ? old.value : undefined)
    if (old) {
      const start = withFittedComment(source, source.lastIndexOf('\n', (old.key as Node).range![0] - 1) + 1)
      splices.push({service, start, end: lineEndAfter(source, (old.value as Node | null)?.range?.[1] ?? (old.key as Node).range![1]), text})
    } else {
      const at = lineEndAfter(source, valueEnd)
      splices.push({service, start: at, end: at, text: at === source.length && !source.endsWith('\n') && source.length > 0 ? `\n${text}` : text})
    }
  }
  // From the end of the file back, so each splice's offsets still hold.
  let text = source
  const edits: ModelEdit[] = []
  for (const s of [...splices].sort((a, b) => b.start - a.start)) {
    edits.unshift({service: s.service, line: lineOf(source, s.start), removed: linesOf(source.slice(s.start, s.end)), added: linesOf(s.text)})
    text = text.slice(0, s.start) + s.text + text.slice(s.end)
  }
  return {text, edits, notWritten}
}

function renderBlock(model: FittedModel, comment: string, indent: string, old: YAMLMap | undefined): string {
  const block = new Document({simulate: simulateBlock(model)})
  const simulate = block.get('simulate', true) as YAMLMap
  const latency = simulate.get('latency', true)
  if (isMap(latency)) latency.flow = true
  const samples = isMap(latency) ? latency.get('samples', true) : undefined
  if (samples && typeof samples === 'object' && 'flow' in samples) (samples as {flow: boolean}).flow = true
  const calls = simulate.get('calls', true)
  if (calls && typeof calls === 'object' && 'items' in calls) for (const c of (calls as {items: Array<{flow?: boolean}>}).items) c.flow = true
  // As the user wrote them: the fit measures none of these.
  for (const pair of old?.items ?? []) if (KEPT_KEYS.includes(keyOf(pair) ?? '')) simulate.set(keyOf(pair), (pair.value as Node).clone())
  const body = block.toString({lineWidth: 0, flowCollectionPadding: false}).trimEnd().split('\n')
  return [`# ${FITTED_MARK} ${comment}`, ...body].map((l) => `${indent}${l}\n`).join('')
}

/** Back over the comment line a previous --fit wrote above the block, so a fit again replaces it. */
function withFittedComment(source: string, lineStart: number): number {
  if (lineStart === 0) return lineStart
  const previous = source.lastIndexOf('\n', lineStart - 2) + 1
  return source.slice(previous, lineStart).trim().startsWith(`# ${FITTED_MARK}`) ? previous : lineStart
}

/** The offset just past the line on which the text ending at `end` ends. */
function lineEndAfter(source: string, end: number): number {
  const newline = source.indexOf('\n', Math.max(0, end - 1))
  return newline < 0 ? source.length : newline + 1
}

function lineOf(source: string, offset: number): number {
  let line = 1
  for (let i = source.indexOf('\n'); i >= 0 && i < offset; i = source.indexOf('\n', i + 1)) line++
  return line
}

function linesOf(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n')
}

function keyOf(pair: unknown): string | undefined {
  return isPair(pair) && isScalar((pair as Pair).key) ? String(((pair as Pair).key as {value: unknown}).value) : undefined
}
