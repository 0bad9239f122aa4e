// A fast reader for the YAML a mesh.yaml is written in, building the same AST as the yaml
// library (its Scalar, YAMLMap, YAMLSeq and Pair, with the same offsets) so the checkers
// cannot tell the two apart. The library composes about 1 MB a second; this reads 10 MB
// in well under a second (docs/benchmarks.md, "Checking a large mesh.yaml").
//
// It reads block mappings and sequences, flow {…} and […] on one or more lines, plain and
// quoted scalars on one line, | and > block scalars, and comments. Whatever else a file
// uses (anchors, aliases, tags, directives, several documents, ? keys, multi-line plain or
// quoted scalars, tabs) and whatever is not valid YAML makes it return undefined, and the
// caller parses with the yaml library: the result is the library's in every case, and
// every syntax error is the library's to report.

import {Document, isScalar, LineCounter, Pair, Scalar, YAMLMap, YAMLSeq, type ParseOptions, type Schema} from 'yaml'
import type {Path} from './checker.js'
import type {Substitutable} from './interpolate.js'

/** Thrown inside the reader when the text leaves the subset; never escapes it. */
class Unsupported extends Error {}

const SPACE = 32
const LF = 10
const CR = 13
const HASH = 35
const COLON = 58
const DASH = 45
const COMMA = 44
const LBRACE = 123
const RBRACE = 125
const LBRACKET = 91
const RBRACKET = 93
const DQUOTE = 34
const SQUOTE = 39

/** Characters that may not start a plain scalar (YAML's c-indicator), `-?:` only when a space follows. */
const INDICATOR = new Set([...'-?:,[]{}#&*!|>\'"%@`'].map((c) => c.charCodeAt(0)))
const FLOW_INDICATOR = new Set([COMMA, LBRACKET, RBRACKET, LBRACE, RBRACE])
/** Anything a reader of this subset would have to think harder about: tabs, other control characters, a CR alone, YAML 1.1 line breaks, a BOM past the start. */
const AWKWARD = /[\x00-\x08\x09\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029\ufeff]|\r(?!\n)/
/** What a core-schema null (~ null), boolean or number starts with; any other plain scalar is a string. */
const MAYBE_TYPED = new Set([...'~nNtTfF0123456789+-.'].map((c) => c.charCodeAt(0)))
const unsupported = (): never => {
  throw new Unsupported()
}
/** An implicit key longer than this is an error in the yaml library. */
const MAX_KEY = 1024

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  e: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
}

// yaml's node constructors each define a property with Object.defineProperty (the node's
// kind; a collection's schema): a third of the reading time. The reader's nodes are the
// same objects made without them: each class's prototype sits on one that carries the kind,
// below yaml's class (so `instanceof` and every method hold), where yaml's isScalar, isMap…
// look for it (under Symbol.for keys, which every copy of the library shares).
const NODE_TYPE = Symbol.for('yaml.node.type')
type Range = [number, number, number]

function kindOf(cls: {prototype: object}, kind: string): object {
  return Object.create(cls.prototype, {[NODE_TYPE]: {value: Symbol.for(kind)}})
}

class ReadScalar {
  declare format?: string
  constructor(
    public value: unknown,
    public source: string,
    public type: Scalar.Type,
    public start: number,
    public end: number,
  ) {}
}
class ReadMap {
  items: Pair[] = []
  declare flow?: boolean
  start = 0
  end = 0
  constructor(public schema: Schema) {}
}
class ReadSeq {
  items: unknown[] = []
  declare flow?: boolean
  start = 0
  end = 0
  constructor(public schema: Schema) {}
}
// yaml keeps a node's range as an array; these make it when asked for (positions are read
// only for the nodes an issue is about): a third fewer objects to allocate and collect.
for (const cls of [ReadScalar, ReadMap, ReadSeq]) {
  Object.defineProperty(cls.prototype, 'range', {
    get(this: {start: number; end: number}): Range {
      return [this.start, this.end, this.end]
    },
    set(this: {start: number; end: number}, range: Range) {
      this.start = range[0]
      this.end = range[1]
    },
  })
}
class ReadPair {
  constructor(
    public key: unknown,
    public value: unknown,
  ) {}
}
Object.setPrototypeOf(ReadScalar.prototype, kindOf(Scalar, 'yaml.scalar'))
Object.setPrototypeOf(ReadMap.prototype, kindOf(YAMLMap, 'yaml.map'))
Object.setPrototypeOf(ReadSeq.prototype, kindOf(YAMLSeq, 'yaml.seq'))
Object.setPrototypeOf(ReadPair.prototype, kindOf(Pair, 'yaml.pair'))

function scalar(value: unknown, source: string, type: Scalar.Type, start: number, end: number): Scalar {
  return new ReadScalar(value, source, type, start, end) as unknown as Scalar
}

function pair(key: unknown, value: unknown): Pair {
  return new ReadPair(key, value) as unknown as Pair
}

export interface SubsetRead {
  /** What the library's parseDocument gives. */
  doc: Document
  /** What duplicateKeys(doc) gives, found while reading (in another order). */
  duplicateKeys: Scalar[]
  /** What substitutable(doc) gives, found while reading. */
  substitutable: Substitutable[]
}

/**
 * `source` as the yaml library's Document (what parseDocument with `options` gives), or
 * undefined when it uses YAML outside this reader's subset. Fills `lineCounter` as the
 * library would.
 */
export function parseSubset(source: string, lineCounter: LineCounter, options: ParseOptions & {uniqueKeys?: boolean} = {}): SubsetRead | undefined {
  const bom = source.charCodeAt(0) === 0xfeff ? 1 : 0
  if (AWKWARD.test(bom ? source.slice(1) : source)) return undefined
  const doc = new Document(undefined, options)
  // MAYBE_TYPED knows the core schema's scalars only (YAML 1.2, the library's default).
  if (doc.schema.name !== 'core') return undefined
  const reader = new Reader(source, bom, doc)
  try {
    doc.contents = reader.document() as never
  } catch (error) {
    if (error instanceof Unsupported) return undefined
    throw error
  }
  lineCounter.addNewLine(0)
  for (let nl = source.indexOf('\n'); nl !== -1; nl = source.indexOf('\n', nl + 1)) lineCounter.addNewLine(nl + 1)
  return {doc, duplicateKeys: reader.duplicates, substitutable: reader.substitutable}
}

type Node = Scalar | YAMLMap | YAMLSeq

class Reader {
  private pos: number
  /** The indent of the line `pos` is on (set by nextContent); -1 at the end of the text. */
  private indent = -1
  private readonly len: number
  /** The path of the node being read. */
  private readonly path: Path = []
  readonly duplicates: Scalar[] = []
  readonly substitutable: Substitutable[] = []
  private readonly tags: Array<{default?: boolean | 'key'; test?: RegExp; format?: string; resolve: (v: string, onError: (m: string) => void, o: ParseOptions) => unknown; collection?: unknown}>

  constructor(
    private readonly src: string,
    start: number,
    private readonly doc: Document,
  ) {
    this.pos = start
    this.len = src.length
    this.tags = doc.schema.tags as never
  }

  document(): Node {
    this.nextContent()
    // An empty document, or one that does not start at column 0, is the library's.
    if (this.indent !== 0) throw new Unsupported()
    const root = this.blockNode(0, -1)
    if ((this.indent as number) !== -1) throw new Unsupported()
    return root
  }

  // -------------------------------------------------------------------------------
  // Lines

  private code(at = this.pos): number {
    return at < this.len ? this.src.charCodeAt(at) : -1
  }

  /** Whether `at` ends a line (LF, CRLF or the end); a lone CR is not in the subset. */
  private isEol(at: number): boolean {
    const c = this.code(at)
    if (c === LF || c === -1) return true
    if (c === CR) {
      if (this.code(at + 1) === LF) return true
      throw new Unsupported()
    }
    return false
  }

  private skipSpaces(): void {
    while (this.code() === SPACE) this.pos++
  }

  /** After a node on its line: spaces, a comment, the line break; then on to the next content line. */
  private endLine(): void {
    this.skipSpaces()
    this.comment()
    if (!this.isEol(this.pos)) throw new Unsupported()
    this.nextLine()
    this.nextContent()
  }

  /** A comment at pos, up to the line's end; it needs a space before it (`"a"#b` is an error). */
  private comment(): void {
    if (this.code() !== HASH) return
    const before = this.pos === 0 ? LF : this.src.charCodeAt(this.pos - 1)
    if (before !== SPACE && before !== LF) throw new Unsupported()
    this.toEol()
  }

  private toEol(): void {
    const nl = this.src.indexOf('\n', this.pos)
    this.pos = nl === -1 ? this.len : this.src.charCodeAt(nl - 1) === CR ? nl - 1 : nl
  }

  /** From a line's end to the start of the next line. */
  private nextLine(): void {
    const c = this.code()
    if (c === CR) this.pos += 2
    else if (c === LF) this.pos++
  }

  /** From a line's start past blank and comment lines to the first character of the next content line; sets `indent`. */
  private nextContent(): void {
    for (;;) {
      const lineStart = this.pos
      this.skipSpaces()
      const c = this.code()
      if (c === -1) {
        this.indent = -1
        return
      }
      if (c === HASH) this.toEol()
      if (this.isEol(this.pos)) {
        this.nextLine()
        continue
      }
      this.indent = this.pos - lineStart
      // Document markers and directives start another document: the library's.
      if (this.indent === 0 && (c === 37 /* % */ || this.startsMarker())) throw new Unsupported()
      return
    }
  }

  private startsMarker(): boolean {
    const s = this.src.substr(this.pos, 3)
    return (s === '---' || s === '...') && (this.isEol(this.pos + 3) || this.code(this.pos + 3) === SPACE)
  }

  // -------------------------------------------------------------------------------
  // Block collections

  /** The node that starts at `pos` (column `indent`), on a line of its own, inside a collection at `parent`. */
  private blockNode(col: number, parent: number): Node {
    if (this.isSeqItem()) return this.blockSeq(col)
    if (this.keyAhead()) return this.blockMap(col)
    const c = this.code()
    if (c === LBRACE || c === LBRACKET) {
      const node = this.flowNode(parent)
      this.endLine()
      return node
    }
    // A plain or quoted scalar alone on its line; one that goes on over more lines is the library's.
    const node = c === DQUOTE || c === SQUOTE ? this.quoted() : this.plain(false)
    this.endLine()
    return node
  }

  private isSeqItem(): boolean {
    return this.code() === DASH && (this.code(this.pos + 1) === SPACE || this.isEol(this.pos + 1))
  }

  /** A block mapping whose keys are at column `col`; returns at the first line indented less (or not a key). */
  private blockMap(col: number): YAMLMap {
    const map = new ReadMap(this.doc.schema!)
    const start = this.pos
    for (;;) {
      const key = this.key()
      // pos is just past the ':'
      this.skipSpaces()
      this.path.push(String(key.value))
      let value: Node
      if (this.code() === HASH || this.isEol(this.pos)) {
        const empty = this.pos
        this.endLine()
        if (this.indent > col) value = this.blockNode(this.indent, col)
        // A list may sit at its key's own indent.
        else if (this.indent === col && this.isSeqItem()) value = this.blockSeq(col)
        else value = this.empty(empty)
      } else {
        value = this.inlineValue(col, false)
      }
      this.attach(value)
      this.path.pop()
      map.items.push(pair(key, value))
      if (this.indent !== col) break
      if (this.isSeqItem()) throw new Unsupported()
    }
    if (this.indent > col) throw new Unsupported()
    map.start = start
    map.end = this.pos
    this.findDuplicates(map.items)
    return map as unknown as YAMLMap
  }

  /** A block sequence whose dashes are at column `col`. */
  private blockSeq(col: number): YAMLSeq {
    const seq = new ReadSeq(this.doc.schema!)
    const start = this.pos
    for (let i = 0; ; i++) {
      this.pos++ // the dash
      this.skipSpaces()
      this.path.push(i)
      let item: Node
      if (this.code() === HASH || this.isEol(this.pos)) {
        const empty = this.pos
        this.endLine()
        item = this.indent > col ? this.blockNode(this.indent, col) : this.empty(empty)
      } else {
        item = this.inlineValue(col, true)
      }
      this.attach(item)
      this.path.pop()
      seq.items.push(item)
      if (this.indent !== col || !this.isSeqItem()) break
    }
    if (this.indent > col) throw new Unsupported()
    seq.start = start
    seq.end = this.pos
    return seq as unknown as YAMLSeq
  }

  /** A value after `key: ` or `- ` on the same line, in a collection at column `col`. */
  private inlineValue(col: number, inSeq: boolean): Node {
    const c = this.code()
    if (inSeq) {
      const here = this.pos - this.lineStartOf(this.pos)
      // `- - x` and `- key: v` start a collection at this column.
      if (this.isSeqItem()) return this.blockSeq(here)
      if (this.keyAhead()) return this.blockMap(here)
    }
    if (c === 124 /* | */ || c === 62 /* > */) return this.blockScalar(col)
    let node: Node
    if (c === LBRACE || c === LBRACKET) node = this.flowNode(col)
    else if (c === DQUOTE || c === SQUOTE) node = this.quoted()
    else node = this.plain(false)
    this.endLine()
    return node
  }

  private lineStartOf(at: number): number {
    return this.src.lastIndexOf('\n', at - 1) + 1
  }

  /** The empty value of `key:` or `-`: the library places it after the spaces that follow. */
  private empty(at: number): Scalar {
    return scalar(null, '', Scalar.PLAIN, at, at)
  }

  /** A value read at `path`: one with a $ is for interpolation. */
  private attach(node: Node): void {
    const value = (node as Scalar).value
    if (typeof value === 'string' && value.includes('$')) this.substitutable.push({node: node as Scalar, path: this.path.slice()})
  }

  /** Keys that are equal scalars, as duplicateKeys finds them: each one after the first. */
  private findDuplicates(items: Pair[]): void {
    if (items.length < 2) return
    if (items.length <= 8) {
      for (let i = 1; i < items.length; i++) {
        const v = (items[i].key as Scalar).value
        for (let j = 0; j < i; j++) {
          const w = (items[j].key as Scalar).value
          // Set's equality (SameValueZero): NaN is a key like any other.
          if (v === w || (v !== v && w !== w)) {
            this.duplicates.push(items[i].key as Scalar)
            break
          }
        }
      }
      return
    }
    const seen = new Set<unknown>()
    for (const item of items) {
      const v = (item.key as Scalar).value
      if (seen.has(v)) this.duplicates.push(item.key as Scalar)
      else seen.add(v)
    }
  }

  // -------------------------------------------------------------------------------
  // Keys and scalars

  /** Whether a `key:` starts at pos (pos unchanged). */
  private keyAhead(): boolean {
    const start = this.pos
    try {
      this.key()
      return true
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error
      return false
    } finally {
      this.pos = start
    }
  }

  /** An implicit key and its `:` (followed by a space or the line's end), on one line. */
  private key(): Scalar {
    const c = this.code()
    const start = this.pos
    const key = c === DQUOTE || c === SQUOTE ? this.quoted() : this.plain(true)
    this.skipSpaces()
    if (this.code() !== COLON || !(this.code(this.pos + 1) === SPACE || this.isEol(this.pos + 1))) throw new Unsupported()
    if (this.pos - start > MAX_KEY) throw new Unsupported()
    this.pos++
    return key
  }

  /**
   * A plain scalar on one line in block context: up to ` #`, `: `, or the line's end.
   * A value (not `asKey`) that reaches `: ` is a nested mapping on one line, an error.
   */
  private plain(asKey: boolean): Scalar {
    const start = this.pos
    this.plainStart(false)
    let end = this.pos
    for (;;) {
      const c = this.code()
      if (c === LF || c === CR || c === -1) break
      if (c === COLON && (this.code(this.pos + 1) === SPACE || this.isEol(this.pos + 1))) {
        if (!asKey) throw new Unsupported()
        break
      }
      if (c === HASH && this.src.charCodeAt(this.pos - 1) === SPACE) break
      this.pos++
      if (c !== SPACE) end = this.pos
    }
    this.pos = end
    return this.plainScalar(start, end, asKey)
  }

  /** Checks the first character of a plain scalar (YAML's ns-plain-first). */
  private plainStart(inFlow: boolean): void {
    const c = this.code()
    if (c === -1 || c === SPACE || this.isEol(this.pos)) throw new Unsupported()
    if (!INDICATOR.has(c)) return
    if (c === DASH || c === 63 /* ? */ || c === COLON) {
      const next = this.code(this.pos + 1)
      if (next !== SPACE && next !== -1 && !this.isEol(this.pos + 1) && !(inFlow && FLOW_INDICATOR.has(next))) return
    }
    throw new Unsupported()
  }

  /** A plain scalar resolved as the library's core schema does (null, booleans, numbers, else a string). */
  private plainScalar(start: number, end: number, atKey: boolean): Scalar {
    const source = this.src.slice(start, end)
    if (!MAYBE_TYPED.has(source.charCodeAt(0))) return scalar(source, source, Scalar.PLAIN, start, end)
    const tag = this.tags.find((t) => (t.default === true || (atKey && t.default === 'key')) && t.test?.test(source))
    if (!tag) return scalar(source, source, Scalar.PLAIN, start, end)
    if (tag.default === 'key' || tag.collection) throw new Unsupported()
    const value = tag.resolve(source, unsupported, this.doc.options)
    // A float keeps its trailing zeros (1.50) on a Scalar of its own.
    const node = isScalar(value) ? value : scalar(value, source, Scalar.PLAIN, start, end)
    node.range = [start, end, end]
    node.source = source
    node.type = Scalar.PLAIN
    if (tag.format) node.format = tag.format
    return node
  }

  /** A single- or double-quoted scalar on one line. */
  private quoted(): Scalar {
    const start = this.pos
    const double = this.code() === DQUOTE
    let value = ''
    let from = ++this.pos
    for (;;) {
      const c = this.code()
      if (c === -1 || c === LF || c === CR) throw new Unsupported()
      if (double && c === 92 /* \ */) {
        value += this.src.slice(from, this.pos) + this.escape()
        from = this.pos
        continue
      }
      if (double ? c === DQUOTE : c === SQUOTE) {
        value += this.src.slice(from, this.pos)
        this.pos++
        if (!double && this.code() === SQUOTE) {
          // '' is one quote
          from = this.pos++
          continue
        }
        break
      }
      this.pos++
    }
    return scalar(value, value, double ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE, start, this.pos)
  }

  /** A double-quoted escape at pos (the backslash); pos moves past it. */
  private escape(): string {
    const next = this.src[this.pos + 1]
    if (next === undefined) throw new Unsupported()
    const simple = ESCAPES[next]
    if (simple !== undefined) {
      this.pos += 2
      return simple
    }
    const length = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0
    const hex = this.src.substr(this.pos + 2, length)
    if (length === 0 || hex.length !== length || !/^[0-9a-fA-F]+$/.test(hex)) throw new Unsupported()
    const code = parseInt(hex, 16)
    if (code > 0x10ffff) throw new Unsupported()
    this.pos += 2 + length
    return String.fromCodePoint(code)
  }

  /**
   * A | or > block scalar after a key or dash in a collection at column `col`: the header,
   * then the lines indented more than `col`. A folded one with more-indented lines, an
   * explicit indentation indicator, and whitespace-only lines longer than the indent are
   * the library's.
   */
  private blockScalar(col: number): Scalar {
    const start = this.pos
    const literal = this.code() === 124
    this.pos++
    let chomp: 'clip' | 'strip' | 'keep' = 'clip'
    if (this.code() === DASH) (chomp = 'strip'), this.pos++
    else if (this.code() === 43 /* + */) (chomp = 'keep'), this.pos++
    this.skipSpaces()
    this.comment()
    if (!this.isEol(this.pos)) throw new Unsupported()
    if (this.code() === -1) throw new Unsupported()
    this.nextLine()

    let indent = -1
    const lines: string[] = []
    /** Empty lines since the last text line. */
    let blank = 0
    let lastBreak = true
    for (;;) {
      const lineStart = this.pos
      this.skipSpaces()
      const spaces = this.pos - lineStart
      if (this.isEol(this.pos)) {
        if (this.code() === -1) {
          // The text ends on an indented blank line: back to its start for nextContent.
          this.pos = lineStart
          break
        }
        if (indent === -1 ? spaces > col + 1 : spaces > indent) throw new Unsupported()
        blank++
        this.nextLine()
        continue
      }
      if (indent === -1) {
        if (spaces <= col) throw new Unsupported() // an empty block scalar
        indent = spaces
      } else if (spaces < indent) {
        this.pos = lineStart
        break
      }
      if (!literal && spaces > indent) throw new Unsupported()
      this.toEol()
      const text = this.src.slice(lineStart + indent, this.pos)
      if (lines.length === 0) lines.push('\n'.repeat(blank) + text)
      else lines.push((literal ? '\n'.repeat(blank + 1) : blank === 0 ? ' ' : '\n'.repeat(blank)) + text)
      blank = 0
      lastBreak = this.code() !== -1
      this.nextLine()
    }
    if (indent === -1) throw new Unsupported()
    // A last line without its line break, and blank lines kept at the end, are the library's to judge.
    if (!lastBreak || (chomp === 'keep' && blank > 0 && this.pos === this.len)) throw new Unsupported()
    let value = lines.join('')
    if (chomp === 'clip') value += '\n'
    else if (chomp === 'keep') value += '\n'.repeat(blank + 1)
    const end = this.pos
    this.nextContent()
    return scalar(value, value, literal ? Scalar.BLOCK_LITERAL : Scalar.BLOCK_FOLDED, start, end)
  }

  // -------------------------------------------------------------------------------
  // Flow collections

  /** A flow node inside a block collection at column `col` (its further lines must be indented more). */
  private flowNode(col: number): Node {
    const c = this.code()
    if (c === LBRACE) return this.flowCollection(col, true)
    if (c === LBRACKET) return this.flowCollection(col, false)
    if (c === DQUOTE || c === SQUOTE) return this.quoted()
    return this.flowPlain()
  }

  private flowCollection(col: number, isMap: boolean): YAMLMap | YAMLSeq {
    const coll = isMap ? new ReadMap(this.doc.schema!) : new ReadSeq(this.doc.schema!)
    coll.flow = true
    const start = this.pos
    const close = isMap ? RBRACE : RBRACKET
    this.pos++
    this.flowSpace(col)
    coll.start = start
    if (this.code() === close) {
      coll.end = ++this.pos
      return coll as unknown as YAMLMap | YAMLSeq
    }
    for (let i = 0; ; i++) {
      const c = this.code()
      if (c === LBRACE || c === LBRACKET) {
        if (isMap) throw new Unsupported() // a collection as a key
      } else if (c === 63 /* ? */ && (this.code(this.pos + 1) === SPACE || this.isEol(this.pos + 1))) {
        throw new Unsupported()
      }
      if (!isMap) this.path.push(i)
      const first = this.flowNode(col)
      if (isMap) {
        this.path.push(String((first as Scalar).value))
        const value = this.flowValue(col)
        this.attach(value)
        ;(coll as ReadMap).items.push(pair(first, value))
      } else {
        this.flowSpace(col)
        // [a: b] is a mapping in a list
        if (this.code() === COLON) throw new Unsupported()
        this.attach(first)
        ;(coll as ReadSeq).items.push(first)
      }
      this.path.pop()
      this.flowSpace(col)
      const after = this.code()
      if (after === close) {
        this.pos++
        break
      }
      if (after !== COMMA) throw new Unsupported()
      this.pos++
      this.flowSpace(col)
      // A trailing comma, or two, is the library's.
      if (this.code() === close || this.code() === COMMA) throw new Unsupported()
    }
    coll.end = this.pos
    if (isMap) this.findDuplicates((coll as ReadMap).items)
    return coll as unknown as YAMLMap | YAMLSeq
  }

  /** `: value` after a key in {…}, on the key's line; `{a: , b: 1}` has an empty value. */
  private flowValue(col: number): Node {
    this.skipSpaces()
    if (this.code() !== COLON) throw new Unsupported() // {a, b} and multi-line keys
    const next = this.code(this.pos + 1)
    if (!(next === SPACE || this.isEol(this.pos + 1) || FLOW_INDICATOR.has(next))) throw new Unsupported()
    this.pos++
    this.skipSpaces()
    const c = this.code()
    if (c === COMMA || c === RBRACE) return this.empty(this.pos)
    this.flowSpace(col)
    const d = this.code()
    if (d === COMMA || d === RBRACE || d === RBRACKET || d === COLON) throw new Unsupported()
    return this.flowNode(col)
  }

  /** Spaces, line breaks and comments inside a flow collection; each new line indented more than `col`. */
  private flowSpace(col: number): void {
    for (;;) {
      this.skipSpaces()
      this.comment()
      if (this.code() === -1) throw new Unsupported()
      if (!this.isEol(this.pos)) return
      this.nextLine()
      const lineStart = this.pos
      this.skipSpaces()
      if (this.pos - lineStart <= col && !this.isEol(this.pos)) throw new Unsupported()
    }
  }

  /** A plain scalar in flow context: up to , [ ] { }, `: `, ` #` or the line's end. */
  private flowPlain(): Scalar {
    const start = this.pos
    this.plainStart(true)
    let end = this.pos
    for (;;) {
      const c = this.code()
      if (c === LF || c === CR || c === -1 || FLOW_INDICATOR.has(c)) break
      if (c === COLON) {
        const next = this.code(this.pos + 1)
        if (next === SPACE || next === -1 || this.isEol(this.pos + 1) || FLOW_INDICATOR.has(next)) break
      }
      if (c === HASH && this.src.charCodeAt(this.pos - 1) === SPACE) break
      this.pos++
      if (c !== SPACE) end = this.pos
    }
    this.pos = end
    if (end - start > MAX_KEY) throw new Unsupported()
    return this.plainScalar(start, end, false)
  }
}
