// Small declarative checkers over the YAML AST. Each checker looks at one node,
// reports every problem it finds (with the node's line:column) and returns the
// converted value, or undefined when the node is invalid. Composites never stop
// at the first problem, so one run reports everything.
//
//   obj({replicas: def(int({min: 1}), 1)})  ──at(node)──▶  {replicas: 3}  or  issue
//                                                          "services.catalog.replicas: expected a positive integer, got "three""

import {isAlias, isMap, isNode, isPair, isScalar, isSeq, type Alias, type Document, type LineCounter, type Node, type Pair, type YAMLMap} from 'yaml'
import {didYouMean, suggestion} from './did-you-mean.js'
import {DURATION_PATTERN, missingUnit, parseDuration} from './duration.js'
import type {ConfigIssue} from './types.js'

export type Path = Array<string | number>

/** ['services', 'catalog', 'dependsOn', 1] → 'services.catalog.dependsOn[1]' */
export function formatPath(path: Path): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`
  return out
}

export interface Position {
  line: number
  column: number
}

interface Ranged {
  range?: [number, number, number] | null
}

/**
 * Collects the issues of one file and turns AST nodes into 1-based line:column.
 * Every lookup it offers is constant time, so checking a file is linear in its size
 * (a mesh.yaml of 300,000 services included): maps are indexed by key on first use,
 * anchors once per document, and errors are counted as they come.
 */
export class Report {
  readonly issues: ConfigIssue[] = []
  private readonly keyIndex = new WeakMap<YAMLMap, Map<string, Pair>>()
  private anchors?: Map<string, Array<{offset: number; node: Node}>>
  private counted = 0
  private errors = 0

  constructor(
    readonly file: string,
    readonly doc: Document,
    readonly lineCounter: LineCounter,
  ) {}

  position(node: unknown): Position {
    const offset = (node as Ranged | null)?.range?.[0]
    if (offset === undefined) return {line: 1, column: 1}
    const {line, col} = this.lineCounter.linePos(offset)
    return {line, column: col}
  }

  positionOfOffset(offset: number): Position {
    const {line, col} = this.lineCounter.linePos(offset)
    return {line, column: col}
  }

  add(severity: ConfigIssue['severity'], node: unknown, path: Path | string, message: string, code?: ConfigIssue['code']): void {
    const issue: ConfigIssue = {file: this.file, ...this.position(node), path: typeof path === 'string' ? path : formatPath(path), message, severity}
    if (code) issue.code = code
    this.issues.push(issue)
  }

  get errorCount(): number {
    // Issues are only ever appended: count the ones added since the last call.
    for (; this.counted < this.issues.length; this.counted++) if (this.issues[this.counted].severity === 'error') this.errors++
    return this.errors
  }

  /** The pair of `map` whose key is `key` (the first, as duplicate keys are an error before any check). */
  pairOf(map: YAMLMap, key: string): Pair | undefined {
    let index = this.keyIndex.get(map)
    if (!index) {
      index = new Map()
      for (const pair of map.items) {
        const k = isPair(pair) ? keyString(pair.key) : undefined
        if (k !== undefined && !index.has(k)) index.set(k, pair as Pair)
      }
      this.keyIndex.set(map, index)
    }
    return index.get(key)
  }

  /** The whole document as an At. */
  root(): At {
    return new At(this, [], this.resolve(this.doc.contents), this.doc.contents ?? undefined)
  }

  /** The At for a path, or the deepest existing ancestor when part of it is absent. */
  locate(path: Path): At {
    let at = this.root()
    for (const seg of path) {
      const next = at.child(seg)
      if (!next) return at
      at = next
    }
    return at
  }

  /** Report at a path: the value node, or the key node with `atKey` (unknown names, whole entries). */
  at(severity: ConfigIssue['severity'], path: Path, message: string, options: {atKey?: boolean} = {}): void {
    const at = this.locate(path)
    this.add(severity, options.atKey && at.keyNode ? at.keyNode : at.positionNode, path, message)
  }

  resolve(node: unknown): unknown {
    // An alias (*name) is checked as the node it points at: the last anchor of that name
    // before it. (yaml's own Alias.resolve walks the whole document for each alias.)
    if (!isAlias(node)) return node
    this.anchors ??= anchorsOf(this.doc)
    const offset = (node as Alias & Ranged).range?.[0] ?? Infinity
    // In file order: binary search for the last one before the alias.
    const list = this.anchors.get(node.source) ?? []
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (list[mid].offset < offset) lo = mid + 1
      else hi = mid
    }
    return lo > 0 ? list[lo - 1].node : undefined
  }
}

/** A cursor: one node of the document, its path, and where to point when it is wrong. */
export class At {
  private built?: Path

  constructor(
    readonly report: Report,
    path: Path | undefined,
    /** The node (aliases resolved); null/undefined when the key has no value. */
    readonly node: unknown,
    /** Where to point: the node itself, or its key when the value is absent. */
    readonly positionNode: unknown,
    readonly keyNode?: unknown,
    /** Without `path`: the parent and this node's key or index in it. */
    private readonly parent?: At,
    private readonly seg?: string | number,
  ) {
    this.built = path
  }

  /** Built on first use: few nodes are ever reported on, and copying every node's path was a tenth of checking. */
  get path(): Path {
    return (this.built ??= [...this.parent!.path, this.seg!])
  }

  get kind(): 'map' | 'seq' | 'scalar' | 'nothing' {
    if (isMap(this.node)) return 'map'
    if (isSeq(this.node)) return 'seq'
    if (isScalar(this.node) && this.node.value !== null) return 'scalar'
    return 'nothing'
  }

  /** The scalar's value (undefined for collections). */
  get value(): unknown {
    return isScalar(this.node) ? this.node.value : undefined
  }

  /** The child at a map key or sequence index, or undefined when it is not there. */
  child(seg: string | number): At | undefined {
    if (isMap(this.node)) {
      const pair = this.report.pairOf(this.node, String(seg))
      if (!pair) return undefined
      return new At(this.report, undefined, this.report.resolve(pair.value), pair.value ?? pair.key, pair.key, this, seg)
    }
    if (isSeq(this.node) && typeof seg === 'number' && seg < this.node.items.length) {
      const item = this.node.items[seg]
      return new At(this.report, undefined, this.report.resolve(item), item ?? this.positionNode, undefined, this, seg)
    }
    return undefined
  }

  /** The children of a mapping in file order, with their key text. */
  entries(): Array<{key: string; at: At}> {
    if (!isMap(this.node)) return []
    const out: Array<{key: string; at: At}> = []
    for (const pair of this.node.items) {
      const key = keyString(pair.key)
      if (key === undefined) {
        this.report.add('error', pair.key, this.path, `expected a plain key, got ${describeNode(pair.key)}`)
        continue
      }
      out.push({key, at: new At(this.report, undefined, this.report.resolve(pair.value), pair.value ?? pair.key, pair.key, this, key)})
    }
    return out
  }

  /** The items of a sequence in file order (none for anything else). */
  items(): At[] {
    if (!isSeq(this.node)) return []
    return this.node.items.map((_, i) => this.child(i)!)
  }

  /** Item `i` of a value written as one thing or a list of them (envFile, watch): the list's item, or the value itself. */
  item(i: number): At {
    return this.kind === 'seq' ? (this.child(i) ?? this) : this
  }

  /** This entry's key as an At (path unchanged), for issues about the name itself. */
  keyAt(): At {
    return new At(this.report, this.built, this.keyNode, this.keyNode ?? this.positionNode, undefined, this.parent, this.seg)
  }

  error(message: string): undefined {
    this.report.add('error', this.positionNode, this.path, message)
    return undefined
  }

  warn(message: string): void {
    this.report.add('warning', this.positionNode, this.path, message)
  }

  errorAtKey(message: string): undefined {
    this.report.add('error', this.keyNode ?? this.positionNode, this.path, message)
    return undefined
  }

  /** `expected a positive integer, got "three"`; always returns undefined so checkers can `return at.expected(...)`. */
  expected(what: string): undefined {
    return this.error(`expected ${what}, got ${describeNode(this.node)}`)
  }
}

/** Every anchor (&name) of the document in file order, by name. */
function anchorsOf(doc: Document): Map<string, Array<{offset: number; node: Node}>> {
  const anchors = new Map<string, Array<{offset: number; node: Node}>>()
  eachNode(doc.contents, (node) => {
    const n = node as Node & {anchor?: string}
    if (n.anchor) {
      const list = anchors.get(n.anchor) ?? []
      list.push({offset: n.range?.[0] ?? 0, node: n})
      anchors.set(n.anchor, list)
    }
  })
  return anchors
}

/** Keys that are equal scalars are one key twice; yaml's own check compares each key with every earlier one. */
export function duplicateKeys(doc: Document): Node[] {
  const dupes: Node[] = []
  eachNode(doc.contents, (node) => {
    if (!isMap(node)) return
    const seen = new Set<unknown>()
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue
      if (seen.has(pair.key.value)) dupes.push(pair.key)
      else seen.add(pair.key.value)
    }
  })
  return dupes
}

/**
 * Every node under `node` in file order (a collection before its items, a key before its
 * value), with its path: the key of each pair whose key is a scalar, the index in a list.
 * `path` is the walker's own and changes as it goes: copy it to keep it. (yaml's `visit`
 * copies and freezes the whole ancestor chain at every node: a third of checking a large file.)
 */
export function eachNode(node: unknown, fn: (node: Node, path: Path, isKey: boolean) => void, path: Path = [], isKey = false): void {
  if (isPair(node)) {
    eachPair(node, fn, path)
    return
  }
  if (!isNode(node)) return
  fn(node, path, isKey)
  if (isMap(node)) {
    for (const pair of node.items) eachPair(pair, fn, path)
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      path.push(i)
      eachNode(node.items[i], fn, path)
      path.pop()
    }
  }
}

function eachPair(pair: Pair, fn: (node: Node, path: Path, isKey: boolean) => void, path: Path): void {
  const key = pair.key
  eachNode(key, fn, path, true)
  const named = isScalar(key)
  if (named) path.push(String(key.value))
  eachNode(pair.value, fn, path)
  if (named) path.pop()
}

function keyString(key: unknown): string | undefined {
  if (isScalar(key) && key.value !== null && typeof key.value !== 'object') return String(key.value)
  return undefined
}

/** How a node reads in "got ...": '"three"', '3.5', 'true', 'a mapping', 'a list', 'nothing'. */
export function describeNode(node: unknown): string {
  if (isMap(node)) return 'a mapping'
  if (isSeq(node)) return 'a list'
  if (isScalar(node)) {
    const v = node.value
    if (v === null) return node.source === '' || node.source === undefined ? 'nothing' : 'null'
    if (typeof v === 'string') return JSON.stringify(v)
    if (typeof v === 'number' && node.source) return node.source
    return String(v)
  }
  if (node === null || node === undefined) return 'nothing'
  return String(node)
}

// ---------------------------------------------------------------------------------
// Checkers

/** A JSON Schema (draft-07) fragment; `false` accepts nothing. */
export type JsonSchema = {[key: string]: unknown} | false

export interface Checker<T> {
  (at: At): T | undefined
  /** What a valid node looks like, for "expected ..." messages. */
  readonly expected: string
  /** The same as a JSON Schema, for editors (`mesh schema`): each combinator says its own. */
  readonly json: JsonSchema
}

export function checker<T>(expected: string, fn: (at: At) => T | undefined, json: JsonSchema = {}): Checker<T> {
  return Object.assign((at: At) => fn(at), {expected, json})
}

/** A non-null scalar, converted by `parse`; undefined from parse means "expected ..., got ...". `json`: what `parse` takes. */
export function scalar<T>(expected: string, parse: (value: unknown, at: At) => T | undefined, json: JsonSchema = {}): Checker<T> {
  return checker(
    expected,
    (at) => {
      if (at.kind !== 'scalar') return at.expected(expected)
      const out = parse(at.value, at)
      return out === undefined ? at.expected(expected) : out
    },
    json === false ? false : {description: expected, ...json},
  )
}

export function str(options: {pattern?: RegExp; expected?: string; nonEmpty?: boolean} = {}): Checker<string> {
  const expected = options.expected ?? (options.nonEmpty ? 'a non-empty string' : 'a string')
  const pattern = options.pattern?.source ?? (options.nonEmpty ? '\\S' : undefined)
  return scalar(
    expected,
    (v) => {
      if (typeof v !== 'string') return undefined
      if (options.nonEmpty && v.trim() === '') return undefined
      if (options.pattern && !options.pattern.test(v)) return undefined
      return v
    },
    {type: 'string', ...(pattern ? {pattern} : {})},
  )
}

/** Any scalar as text: env values, header values (`true` and `8080` become "true" and "8080"). */
export function text(): Checker<string> {
  return scalar(
    'a string, number or boolean',
    (v, at) => {
      if (typeof v === 'string') return v
      const source = (at.node as {source?: string}).source
      // Keep what was written ('1.0', '0x10') rather than its number.
      return typeof v === 'number' && source ? source : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined
    },
    {type: ['string', 'number', 'boolean']},
  )
}

function rangeWords(kind: 'integer' | 'number', min?: number, max?: number): string {
  const a = kind === 'integer' ? 'an integer' : 'a number'
  if (min !== undefined && max !== undefined) return `${a} between ${min} and ${max}`
  if (kind === 'integer' && min === 1) return 'a positive integer'
  if (min === 0) return `a non-negative ${kind}`
  if (min !== undefined) return `${a} >= ${min}`
  if (max !== undefined) return `${a} <= ${max}`
  return a
}

export function int(options: {min?: number; max?: number; expected?: string} = {}): Checker<number> {
  const {min, max} = options
  return scalar(
    options.expected ?? rangeWords('integer', min, max),
    (v) => (typeof v === 'number' && Number.isInteger(v) && (min === undefined || v >= min) && (max === undefined || v <= max) ? v : undefined),
    {type: 'integer', ...bounds(min, max)},
  )
}

export function num(options: {min?: number; max?: number; expected?: string} = {}): Checker<number> {
  const {min, max} = options
  return scalar(
    options.expected ?? rangeWords('number', min, max),
    (v) => (typeof v === 'number' && Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v <= max) ? v : undefined),
    {type: 'number', ...bounds(min, max)},
  )
}

function bounds(min?: number, max?: number): {minimum?: number; maximum?: number} {
  return {...(min !== undefined ? {minimum: min} : {}), ...(max !== undefined ? {maximum: max} : {})}
}

export function bool(): Checker<boolean> {
  return scalar('true or false', (v) => (typeof v === 'boolean' ? v : undefined), {type: 'boolean'})
}

export function enumOf<const V extends string>(values: readonly V[]): Checker<V> {
  const expected = `one of ${values.join(', ')}`
  return checker(
    expected,
    (at) => {
      const v = at.value
      if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as V
      // A near miss (`tpc`, `round_robin`) says which one it probably meant, as unknown keys do.
      return at.error(`expected ${expected}, got ${describeNode(at.node)}${typeof v === 'string' ? suggestion(v, values) : ''}`)
    },
    {description: expected, enum: [...values]},
  )
}

/** '300ms' '1s' '2m' → ms; a number without its unit is an error that names the units. */
export function duration(options: {min?: number} = {}): Checker<number> {
  const expected = options.min && options.min > 0 ? 'a positive duration like 300ms, 1s or 2m' : 'a duration like 300ms, 1s or 2m'
  const positive = options.min !== undefined && options.min > 0
  return checker(
    expected,
    (at) => {
      const v = at.value
      if (at.kind !== 'scalar' || (typeof v !== 'string' && typeof v !== 'number')) return at.expected(expected)
      const ms = parseDuration(v)
      // `timeout: 300` lacks only its unit: say which two it may have meant.
      if (ms === undefined) return at.error(`expected ${expected}, got ${describeNode(at.node)}${missingUnit(v)}`)
      return options.min === undefined || ms >= options.min ? ms : at.expected(expected)
    },
    {description: expected, anyOf: [{type: 'string', pattern: DURATION_PATTERN}, ...(positive ? [] : [{const: 0}])]},
  )
}

export function array<T>(item: Checker<T>, options: {min?: number} = {}): Checker<T[]> {
  const expected = options.min ? 'a non-empty list' : 'a list'
  const json = {type: 'array', items: item.json, ...(options.min ? {minItems: options.min} : {})}
  return checker(expected, (at) => {
    if (!isSeq(at.node)) return at.expected(expected)
    if (options.min && at.node.items.length < options.min) return at.expected(expected)
    const out: T[] = []
    let ok = true
    for (let i = 0; i < at.node.items.length; i++) {
      const v = item(at.child(i)!)
      if (v === undefined) ok = false
      else out.push(v)
    }
    return ok ? out : undefined
  }, json)
}

/** A mapping of names you choose (services, versions, env) → ordered [name, value] pairs. */
export function entries<T>(value: Checker<T>, options: {key?: Checker<string>; min?: number; expected?: string} = {}): Checker<Array<[string, T]>> {
  const expected = options.expected ?? (options.min ? 'a non-empty mapping' : 'a mapping')
  const json = {
    type: 'object',
    additionalProperties: value.json,
    ...(options.key ? {propertyNames: options.key.json} : {}),
    ...(options.min ? {minProperties: options.min} : {}),
  }
  return checker(expected, (at) => {
    if (!isMap(at.node) || (options.min && at.node.items.length < options.min)) return at.expected(expected)
    const out: Array<[string, T]> = []
    let ok = true
    for (const {key, at: child} of at.entries()) {
      if (options.key && options.key(child.keyAt()) === undefined) ok = false
      const v = value(child)
      if (v === undefined) ok = false
      else out.push([key, v])
    }
    return ok && out.length === at.node.items.length ? out : undefined
  }, json)
}

export function record<T>(value: Checker<T>, options: {key?: Checker<string>; min?: number} = {}): Checker<Record<string, T>> {
  return map(entries(value, options), (pairs) => Object.fromEntries(pairs))
}

// Fields of a fixed-shape mapping.
export interface Field<O> {
  readonly mode: 'required' | 'optional' | 'default'
  readonly checker: Checker<unknown>
  readonly fallback?: () => unknown
  /** Carries the output type only. */
  readonly _out?: O
}

export function req<T>(c: Checker<T>): Field<T> {
  return {mode: 'required', checker: c}
}

export function opt<T>(c: Checker<T>): Field<T | undefined> {
  return {mode: 'optional', checker: c}
}

/** A field with a default; a function default is called each time (fresh objects). */
export function def<T>(c: Checker<T>, fallback: T | (() => T)): Field<T> {
  return {mode: 'default', checker: c, fallback: typeof fallback === 'function' ? (fallback as () => T) : () => fallback}
}

export type Shape = Record<string, Field<unknown>>
export type ShapeOut<S extends Shape> = {[K in keyof S]: S[K] extends Field<infer O> ? O : never}

/**
 * A mapping with known keys. Unknown keys are errors at the key (with did-you-mean),
 * missing required keys are errors at the mapping. An empty value (`simulate:`) is an empty mapping.
 */
export function obj<S extends Shape>(shape: S, options: {expected?: string} = {}): Checker<ShapeOut<S>> {
  const expected = options.expected ?? 'a mapping'
  const known = Object.keys(shape)
  // `simulate:` with nothing after it is an empty mapping: YAML reads it as null.
  const json = {
    type: ['object', 'null'],
    properties: Object.fromEntries(known.map((key) => [key, shape[key].checker.json])),
    required: known.filter((key) => shape[key].mode === 'required'),
    additionalProperties: false,
  }
  return checker(expected, (at) => {
    if (at.kind !== 'map' && at.kind !== 'nothing') return at.expected(expected)
    if (at.kind === 'nothing' && isScalar(at.node) && at.node.source !== '' && at.node.source !== undefined) return at.expected(expected)
    let ok = true
    const present = new Map<string, At>()
    const unknown: {key: string; at: At}[] = []
    for (const entry of at.entries()) {
      if (Object.hasOwn(shape, entry.key)) present.set(entry.key, entry.at)
      else unknown.push(entry)
    }
    // A misnamed required key (`p50Ms` for `p50`) is one mistake: it is reported once, at
    // the key, rather than as an unknown key and a missing one.
    const missing = unknown.length === 0 ? [] : known.filter((key) => shape[key].mode === 'required' && !present.has(key))
    const meant = new Set<string>()
    for (const {key, at: child} of unknown) {
      const instead = misnamed(key, missing, meant)
      if (instead) meant.add(instead)
      const hint = instead ? `; did you mean "${instead}"?` : suggestion(key, known) || `; expected one of ${known.join(', ')}`
      child.errorAtKey(`unknown key "${key}"${hint}`)
      ok = false
    }
    const out: Record<string, unknown> = {}
    for (const key of known) {
      const field = shape[key]
      const child = present.get(key)
      if (child) {
        const v = field.checker(child)
        if (v === undefined) ok = false
        out[key] = v
      } else if (field.mode === 'required') {
        if (!meant.has(key)) at.error(`missing required key "${key}"`)
        ok = false
      } else if (field.mode === 'default') {
        out[key] = field.fallback!()
      } else {
        out[key] = undefined
      }
    }
    return ok ? (out as ShapeOut<S>) : undefined
  }, json)
}

/**
 * The missing required key an unknown key stands for, if it plainly does: the closest by
 * did-you-mean, or one it starts with (`p50Ms`, `timeoutSeconds`), each taken once.
 */
function misnamed(key: string, missing: readonly string[], taken: ReadonlySet<string>): string | undefined {
  const free = missing.filter((m) => !taken.has(m))
  const lower = key.toLowerCase()
  return didYouMean(key, free) ?? free.find((m) => lower.startsWith(m.toLowerCase()))
}

/** Different shapes for different node kinds: `latency: 20ms` or `latency: {p50: 20ms, p99: 120ms}`. */
export function oneOf<T>(expected: string, branches: {scalar?: Checker<T>; map?: Checker<T>; seq?: Checker<T>}): Checker<T> {
  const anyOf = [branches.scalar, branches.map, branches.seq].flatMap((b) => (b && b.json !== false ? [b.json] : []))
  return checker(
    expected,
    (at) => {
      const kind = at.kind
      const branch = kind === 'map' ? branches.map : kind === 'seq' ? branches.seq : kind === 'scalar' ? branches.scalar : undefined
      return branch ? branch(at) : at.expected(expected)
    },
    {description: expected, anyOf},
  )
}

export function map<T, U>(c: Checker<T>, fn: (value: T) => U): Checker<U> {
  return checker(
    c.expected,
    (at) => {
      const v = c(at)
      return v === undefined ? undefined : fn(v)
    },
    c.json,
  )
}

/** A further check with access to the node, for rules a shape cannot say ("p99 >= p50"). Report, then return undefined to reject. */
export function refine<T, U = T>(c: Checker<T>, fn: (value: T, at: At) => U | undefined): Checker<U> {
  return checker(
    c.expected,
    (at) => {
      const v = c(at)
      return v === undefined ? undefined : fn(v, at)
    },
    c.json,
  )
}
