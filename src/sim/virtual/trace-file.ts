// Traces on disk: `mesh sim --traces FILE` writes its sampled requests' spans here, and
// `mesh trace --traces FILE ID` / `mesh traces --traces FILE` read them back into a
// TraceStore, so the list, the waterfall and --why work on simulated requests as on the
// daemon's. One Span (span.ts, the store's own unit) per line as JSON: a file can be
// appended to, cut, grepped and concatenated. A JSON array of spans (what
// `mesh trace ID --json` prints) reads too.
import {closeSync, openSync, writeSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {findTrace} from '../control/telemetry-queries.js'
import {MeshError} from '../errors.js'
import {isErrorSpan, type Span} from '../telemetry/span.js'
import {isEntrySpan, TraceStore} from '../telemetry/trace-store.js'

function cannotWrite(file: string, error: unknown): MeshError {
  return new MeshError('MESH_BAD_FLAG', `--traces ${file}: cannot write it: ${(error as Error).message}`, {
    cause: error,
    hints: ['Give a path in a directory that exists and you can write to, e.g. --traces traces.jsonl'],
  })
}

/** A trace worth showing first: its id, and how long its request took. */
export interface NotableTrace {
  traceId: string
  durationMs: number
}

/**
 * Spans written as the simulation records them, a chunk at a time: memory holds one chunk,
 * not the run's traces. Keeps count, and the ids of the slowest request and of the first
 * that failed, for the report to point at.
 */
export class TraceFileWriter {
  private readonly fd: number
  private chunk = ''
  spans = 0
  traces = 0
  slowest: NotableTrace | undefined
  firstFailed: NotableTrace | undefined

  constructor(readonly file: string) {
    try {
      this.fd = openSync(file, 'w')
    } catch (error) {
      throw cannotWrite(file, error)
    }
  }

  readonly record = (span: Span): void => {
    this.chunk += `${JSON.stringify(span)}\n`
    this.spans++
    if (isEntrySpan(span)) {
      this.traces++
      const t = {traceId: span.traceId, durationMs: span.durationMs}
      if (!this.slowest || t.durationMs > this.slowest.durationMs) this.slowest = t
      if (!this.firstFailed && isErrorSpan(span)) this.firstFailed = t
    }
    if (this.chunk.length >= CHUNK_CHARS) this.flush()
  }

  close(): void {
    this.flush()
    closeSync(this.fd)
  }

  private flush(): void {
    if (this.chunk === '') return
    try {
      writeSync(this.fd, this.chunk)
    } catch (error) {
      throw cannotWrite(this.file, error)
    }
    this.chunk = ''
  }
}

const CHUNK_CHARS = 1 << 20

function isSpan(v: unknown): v is Span {
  const s = v as Partial<Span> | null
  return typeof s === 'object' && s !== null && typeof s.traceId === 'string' && typeof s.spanId === 'string' && typeof s.startMs === 'number'
}

function notSpans(file: string, where: string, what: string): MeshError {
  return new MeshError('MESH_BAD_FLAG', `--traces ${file}${where}: ${what}`, {
    hints: ['Give a file `mesh sim --traces FILE` wrote (one span per line as JSON), or what `mesh trace ID --json` printed.'],
  })
}

/** The spans of a traces file; a line that is not a span names the file and the line. */
export function parseTraceFile(text: string, file: string): Span[] {
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (error) {
      throw notSpans(file, '', `not JSON: ${(error as Error).message}`)
    }
    const spans = parsed as unknown[]
    const bad = spans.findIndex((s) => !isSpan(s))
    if (bad >= 0) throw notSpans(file, ` [${bad}]`, 'not a span (it needs traceId, spanId and startMs)')
    return spans as Span[]
  }
  const spans: Span[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '') continue
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch (error) {
      throw notSpans(file, `:${i + 1}`, `not JSON: ${(error as Error).message}`)
    }
    if (!isSpan(parsed)) throw notSpans(file, `:${i + 1}`, 'not a span (it needs traceId, spanId and startMs)')
    spans.push(parsed)
  }
  return spans
}

export async function readTraceFile(file: string): Promise<Span[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new MeshError('MESH_BAD_FLAG', `--traces ${file}: cannot read it: ${(error as Error).message}`, {
      cause: error,
      hints: ['Write one with `mesh sim --traces FILE`.'],
    })
  }
  return parseTraceFile(text, file)
}

/** A store holding every span of the file: no bound, as the file is already all there is. */
export function traceStoreOf(spans: Iterable<Span>): TraceStore {
  const store = new TraceStore({maxSpans: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, maxSpansPerTrace: Number.MAX_SAFE_INTEGER})
  for (const span of spans) store.add(span)
  return store
}

/** One trace of a file by full id or unique prefix, as `mesh trace ID` finds one in the daemon's store. */
export function findTraceInFile(spans: Iterable<Span>, id: string, file: string): Span[] {
  try {
    return findTrace(traceStoreOf(spans), id.toLowerCase())
  } catch (error) {
    if (error instanceof MeshError && error.code === 'MESH_TRACE_NOT_FOUND') {
      throw new MeshError('MESH_TRACE_NOT_FOUND', `no trace ${id} in ${file}.`, {hints: [`List its traces with \`mesh traces --traces ${file}\`.`]})
    }
    throw error
  }
}
