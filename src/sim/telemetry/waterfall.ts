// A trace as a terminal waterfall (`mesh trace ID`): the span tree on the left, one
// bar per span on a common time axis on the right, then duration, status and marks.
// Spans arrive from many sidecars in any order, some twice, some without their
// parent, some with skewed clocks: rendering never throws and shows what it got.
//
//   * frontend-v1-0 GET /checkout      │██████████████████████████│  120.0ms 200
//   * └─frontend → catalog GET /items  │  ████████████████████████│  110.0ms 200
//
import {Chalk, type ChalkInstance} from 'chalk'
import {describeGrpcStatus} from '../proxy/grpc.js'
import {criticalPath} from './critical-path.js'
import {isErrorSpan, type RoutingDecision, type Span, spanEndMs} from './span.js'

export interface WaterfallOptions {
  /** Total columns available (terminal width). */
  width: number
  /** ANSI colour; when false the output has no escape codes at all. */
  colour: boolean
  /** Add each hop's routing decision under it. */
  why?: boolean
  /** Wall-clock now (epoch ms): adds the trace's age to the header. */
  now?: number
}

interface Node {
  span: Span
  children: Node[]
  /** Why a span with a parentId is shown at the top level. */
  orphan?: 'missing' | 'self' | 'cycle'
  critical: boolean
  start: number
  end: number
}

const MIN_BAR = 10
/** Indent levels always drawn before a deep row folds its indent into a number: room for `[78]└─`. */
const MIN_LEVELS = 3
const ORPHAN_REASON = {
  missing: (p: string) => `orphan: parent ${p} is not in this trace`,
  self: (p: string) => `orphan: names itself (${p}) as its parent`,
  cycle: (p: string) => `orphan: its parent chain (via ${p}) loops back to it`,
}
// duration (8) + status (4) + room for marks such as '(attempt 2) [UT]'
const INFO_WIDTH = 32

export function renderWaterfall(spans: Span[], opts: WaterfallOptions): string {
  const c = new Chalk({level: opts.colour ? 1 : 0})
  const width = Math.max(40, Math.floor(Number.isFinite(opts.width) ? opts.width : 80))
  const roots = buildTree(spans)
  if (roots.length === 0) return 'No spans in this trace.\n'

  const all: Node[] = []
  walk(roots, (n) => all.push(n))
  const t0 = Math.min(...all.map((n) => n.start))
  const t1 = Math.max(...all.map((n) => n.end))
  const total = t1 - t0
  for (const n of criticalPath(roots)) n.critical = true

  const retried = retriedParents(all)
  const parentOf = new Map<Node, Node>()
  for (const n of all) for (const child of n.children) parentOf.set(child, n)
  const nameOf = (n: Node) => (n.orphan ? '? ' : '') + label(n.span, parentOf.get(n)?.span)
  const nameMax = Math.max(...all.map((n) => nameOf(n).length))
  const labelCap = Math.floor(width * 0.32)
  // The column widens past its share of the terminal for a few levels of indent, up to what
  // leaves the narrowest bar and the duration, status and marks.
  const labelMax = Math.max(labelCap, Math.min(nameMax + 2 * MIN_LEVELS, width - 4 - MIN_BAR - INFO_WIDTH))
  // Indent levels drawn as a tree: as many as every row's name fits beside. A row deeper than
  // that folds the rest of its indent into its depth as a number, so a deep trace (a 40-service
  // chain is 79 levels) never truncates a name for its indent.
  let levels = Infinity
  const measure = (nodes: Node[], depth: number) => {
    for (const node of nodes) {
      const length = nameOf(node).length
      if (2 * depth + length > labelMax) levels = Math.min(levels, depth - 1, Math.floor((labelMax - length) / 2))
      measure(node.children, depth + 1)
    }
  }
  measure(roots, 0)
  levels = Math.max(MIN_LEVELS, levels)
  // A folded row: its depth, then as much of its indent as fits in the drawn levels' width.
  const tail = (guides: string, keep: number) => guides.slice(guides.length - Math.max(0, keep))
  const markFor = (depth: number) => `[${depth}]`.padEnd(2 * Math.ceil(`[${depth}]`.length / 2))
  const rows: Array<{node: Node; prefix: string; childPrefix: string; isRoot: boolean}> = []
  let folded = false
  const visit = (nodes: Node[], anc: string, depth: number) => {
    nodes.forEach((node, i) => {
      const last = i === nodes.length - 1
      const childAnc = depth === 0 ? '' : anc + (last ? '  ' : '│ ')
      let prefix = depth === 0 ? '' : anc + (last ? '└─' : '├─')
      let childPrefix = childAnc
      if (depth > levels) {
        folded = true
        const mark = markFor(depth)
        prefix = mark + tail(anc, 2 * levels - 2 - mark.length) + (last ? '└─' : '├─')
        childPrefix = ' '.repeat(mark.length) + tail(childAnc, 2 * levels - mark.length)
      }
      rows.push({node, prefix, childPrefix, isRoot: depth === 0})
      visit(node.children, childAnc, depth + 1)
    })
  }
  visit(roots, '', 0)

  const labels = rows.map((r) => r.prefix + nameOf(r.node))
  const labelWidth = Math.max(12, Math.min(Math.max(...labels.map((l) => l.length)), labelMax))
  const barWidth = Math.max(MIN_BAR, width - 2 - labelWidth - 2 - INFO_WIDTH)
  const scale = total > 0 ? barWidth / total : 0

  const out: string[] = []
  out.push(headerLine(all, roots, total, t0, opts.now, width, c))
  const axisLeft = '0'
  const axisRight = formatLatency(total)
  const mid = total > 0 ? formatLatency(total / 2) : ''
  let axis = axisLeft.padEnd(barWidth - axisRight.length) + axisRight
  if (mid && barWidth >= 24) {
    const at = Math.floor(barWidth / 2 - mid.length / 2)
    axis = axis.slice(0, at) + mid + axis.slice(at + mid.length)
  }
  out.push(' '.repeat(2 + labelWidth + 1) + c.dim(axis.trimEnd()))

  rows.forEach((row, i) => {
    const {node} = row
    const s = node.span
    const crit = node.critical ? c.bold('*') : ' '
    const lab = truncate(labels[i], labelWidth).padEnd(labelWidth)
    const colour = statusColour(s, c)
    const from = Math.min(barWidth - 1, Math.max(0, Math.floor((node.start - t0) * scale)))
    const to = Math.min(barWidth, Math.max(from + 1, Math.ceil((node.end - t0) * scale)))
    // A call the activator held: its first part is the wait for an instance to start, drawn apart.
    const cold = coldCells(s, node, from, to, t0, scale)
    const bar = ' '.repeat(from) + c.cyan(COLD_CELL.repeat(cold)) + colour('█'.repeat(to - from - cold)) + ' '.repeat(barWidth - to)
    const marks: string[] = []
    if (s.attempt !== undefined && (s.attempt > 1 || retried.has(parentKey(s)))) marks.push(`(attempt ${s.attempt})`)
    if (s.responseFlags) marks.push(`[${s.responseFlags}]`)
    // A gRPC call answers 200 whatever happened: its own status says how it went.
    if (s.grpcStatus) marks.push(`grpc ${describeGrpcStatus(s.grpcStatus)}`)
    // DI/FI already say a fault was injected; otherwise say so in words.
    if ((s.fault || s.decision?.faults?.length) && !/\b(DI|FI)\b/.test(s.responseFlags ?? '')) marks.push('fault')
    const status = s.status > 0 ? String(s.status) : '---'
    const infoPlain = formatLatency(node.end - node.start).padStart(8) + ' ' + status.padStart(3)
    const room = width - (2 + labelWidth + 2 + barWidth) - infoPlain.length - 1
    const markText = marks.length && room > 1 ? ' ' + truncate(marks.join(' '), room) : ''
    const labelText = node.critical ? c.bold(lab) : lab
    out.push(`${crit} ${labelText}│${bar}│${infoPlain.slice(0, -3)}${colour(infoPlain.slice(-3))}${c.magenta(markText)}`)

    const detailPrefix = '  ' + row.childPrefix + (node.children.length ? '│ ' : '  ')
    const details: string[] = []
    if (node.orphan) details.push(ORPHAN_REASON[node.orphan](s.parentId ?? ''))
    if (s.fault) details.push(`fault: ${s.fault}`)
    if (s.cause) details.push(`cause: ${s.cause}`)
    if (hasColdStart(s)) details.push(`cold start: waited ${formatLatency(s.coldStartMs!)} for an instance of ${s.kind === 'client' ? (s.peerService ?? '?') : s.service} to start (${COLD_CELL})`)
    if (opts.why && s.decision) {
      // Where the hop was decided: who the caller was, then why it went where it went.
      if (s.peerAuthn) details.push(`why: ${describeAuthn(s)}`)
      details.push(`why: ${describeDecision(s.decision)}`)
    }
    for (const d of details) {
      wrap(d, Math.max(20, width - detailPrefix.length - 2)).forEach((line, j) => {
        const lead = detailPrefix + (j === 0 ? '↳ ' : '  ')
        out.push(c.dim(lead) + (d.startsWith('why') ? c.cyan(line) : c.dim(line)))
      })
    }
  })

  const legend = ['* critical path', 'bars on a common axis from the first start to the last end']
  if (all.some((n) => n.orphan)) legend.splice(1, 0, '? orphan (parent span missing)')
  if (folded) legend.splice(1, 0, '[n] depth, past what indent fits')
  if (all.some((n) => hasColdStart(n.span))) legend.splice(1, 0, `${COLD_CELL} cold start (held for a new instance)`)
  for (const line of wrap(legend.join('   '), width)) out.push(c.dim(line))
  return out.join('\n') + '\n'
}

const COLD_CELL = '░'

function hasColdStart(s: Span): boolean {
  return typeof s.coldStartMs === 'number' && s.coldStartMs > 0
}

/** Cells of the bar [from, to) that are the cold start: at least one, and one left for the call itself when there is room. */
function coldCells(s: Span, node: Node, from: number, to: number, t0: number, scale: number): number {
  if (!hasColdStart(s)) return 0
  const end = Math.min(node.end, node.start + s.coldStartMs!)
  const cells = Math.max(1, Math.round((end - t0) * scale) - from)
  return Math.min(cells, to - from > 1 && end < node.end ? to - from - 1 : to - from)
}

function headerLine(
  all: Node[],
  roots: Node[],
  total: number,
  t0: number,
  now: number | undefined,
  width: number,
  c: ChalkInstance,
): string {
  const ids = [...new Set(all.map((n) => n.span.traceId))]
  const services = new Set(all.map((n) => n.span.service))
  const root = roots[0].span
  const parts = [
    ids.length === 1 ? `trace ${ids[0]}` : `${ids.length} traces`,
    `${root.method} ${root.path}`,
    formatLatency(total),
    `${all.length} span${all.length === 1 ? '' : 's'}`,
    `${services.size} service${services.size === 1 ? '' : 's'}`,
  ]
  if (now !== undefined && Number.isFinite(now) && now >= t0) parts.push(`started ${formatLatency(now - t0)} ago`)
  return c.bold(truncate(parts.join('  '), width))
}

/** A client span under its own service's server span needs no caller name: the tree shows it. */
function label(s: Span, parent: Span | undefined): string {
  if (s.kind === 'client') {
    const from = parent && parent.service === s.service ? '' : `${s.service} `
    return `${from}→ ${s.peerService ?? '?'} ${s.name}`
  }
  return `${s.instance ?? s.service} ${s.name}`
}

function statusColour(s: Span, c: ChalkInstance): (text: string) => string {
  if (isErrorSpan(s)) return c.red
  if (s.status >= 400) return c.yellow
  return c.green
}

/** "chosen b of a, b, c; skipped ejected c; retry budget left 3; per-try timeout fired" (the faults have their own line: the span's `fault`) */
export function describeDecision(d: RoutingDecision): string {
  const parts: string[] = []
  if (d.authorization) parts.push(d.authorization)
  // A refused call went nowhere; a server span carries only its authorization.
  if (d.authorization && (d.authorization.startsWith('denied') || (!d.candidates && !d.chosen))) return parts.join('; ')
  if (d.routeMatched) parts.push(`route ${d.routeMatched}`)
  else if (d.version) parts.push(`version ${d.version} by weight`)
  const candidates = d.candidates?.length ? d.candidates.join(', ') : 'none'
  parts.push(d.chosen ? `chose ${d.chosen} of [${candidates}]` : `no instance chosen of [${candidates}]`)
  if (d.ejected?.length) parts.push(`skipped ejected ${d.ejected.join(', ')}`)
  if (d.attempts && d.attempts > 1) parts.push(`${d.attempts} tries`)
  if (d.panic) parts.push('panic: every candidate ejected, ejections ignored')
  if (d.retryBudgetLeft !== undefined) parts.push(`retry budget left ${d.retryBudgetLeft}`)
  if (d.timeoutFired) parts.push(d.timeoutFired === 'grpc-timeout' ? "the caller's grpc-timeout fired" : `${d.timeoutFired} timeout fired`)
  return parts.join('; ')
}

const VOUCHED = {listener: 'its sidecar listener', mtls: 'its mTLS certificate', jwt: 'a token'} as const

/** "caller spiffe://…/sa/frontend (by its sidecar listener); token from issuer mesh: mesh/alice" */
export function describeAuthn(s: Span): string {
  const by = s.peerAuthn ? ` (by ${VOUCHED[s.peerAuthn]})` : ''
  const caller = s.kind === 'client' ? s.service : s.peerService
  const parts = [s.peerPrincipal ? `caller ${s.peerPrincipal}${by}` : `caller ${caller ?? 'unknown'} has no principal (no certificate)`]
  if (s.requestAuthn === 'valid') parts.push(`token from issuer ${s.authnRule ?? '?'}: ${s.requestPrincipal ?? '(no sub)'}`)
  else if (s.requestAuthn === 'none') parts.push('no token')
  return parts.join('; ')
}

/** A measured time as a reader scans it (12.3ms, 1.25s); config durations use config/duration.ts formatDuration. */
export function formatLatency(ms: number): string {
  const v = Number.isFinite(ms) && ms > 0 ? ms : 0
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 1 : 2)}s`
  if (v >= 10) return `${v.toFixed(1)}ms`
  return `${v.toFixed(2)}ms`
}

const finiteOr = (v: number, fallback: number) => (Number.isFinite(v) ? v : fallback)

/**
 * Parent/child tree by parentId. Duplicates (same kind and id) are kept once; a span
 * whose parent is absent, or that sits in a parent cycle, becomes a marked top-level orphan.
 */
function buildTree(spans: Span[]): Node[] {
  const seen = new Set<string>()
  const nodes: Node[] = []
  for (const span of spans) {
    if (!span || typeof span.spanId !== 'string') continue
    const key = `${span.kind}:${span.spanId}`
    if (seen.has(key)) continue
    seen.add(key)
    nodes.push({span, children: [], critical: false, start: 0, end: 0})
  }
  const finiteStarts = nodes.map((n) => n.span.startMs).filter(Number.isFinite)
  const fallback = finiteStarts.length ? Math.min(...finiteStarts) : 0
  for (const n of nodes) {
    n.start = finiteOr(n.span.startMs, fallback)
    n.end = Math.max(n.start, finiteOr(spanEndMs(n.span), n.start))
  }
  const byId = new Map<string, Node>()
  for (const n of nodes) if (!byId.has(n.span.spanId)) byId.set(n.span.spanId, n)

  const roots: Node[] = []
  const parentOf = new Map<Node, Node>()
  for (const n of nodes) {
    const pid = n.span.parentId
    const parent = pid ? byId.get(pid) : undefined
    if (!pid) roots.push(n)
    else if (!parent || parent === n) {
      n.orphan = parent ? 'self' : 'missing'
      roots.push(n)
    } else parentOf.set(n, parent)
  }
  for (const [child, parent] of parentOf) parent.children.push(child)

  // Nodes never reached from a root sit in a cycle: cut one edge per cycle and show it as an orphan.
  const reached = new Set<Node>()
  const reach = (list: Node[]) => walk(list, (n) => reached.add(n), reached)
  reach(roots)
  for (const n of nodes) {
    if (reached.has(n)) continue
    const parent = parentOf.get(n)!
    parent.children = parent.children.filter((x) => x !== n)
    n.orphan = 'cycle'
    roots.push(n)
    reach([n])
  }
  const order = (a: Node, b: Node) =>
    a.start - b.start || Number(a.span.kind === 'server') - Number(b.span.kind === 'server') ||
    (a.span.spanId < b.span.spanId ? -1 : a.span.spanId > b.span.spanId ? 1 : 0)
  const sortAll = (list: Node[]) => {
    list.sort(order)
    for (const n of list) sortAll(n.children)
  }
  // True roots first, then orphans, each group by start time.
  roots.sort((a, b) => Number(a.orphan) - Number(b.orphan) || order(a, b))
  for (const r of roots) sortAll(r.children)
  return roots
}

function walk(nodes: Node[], fn: (n: Node) => void, seen = new Set<Node>()): void {
  const stack = [...nodes].reverse()
  while (stack.length) {
    const n = stack.pop()!
    if (seen.has(n)) continue
    seen.add(n)
    fn(n)
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i])
  }
}

function parentKey(s: Span): string {
  return `${s.parentId ?? ''}>${s.peerService ?? ''}`
}

/** Hops that were retried: their first attempt is marked too, so the user sees the pair. */
function retriedParents(all: Node[]): Set<string> {
  const out = new Set<string>()
  for (const n of all) if ((n.span.attempt ?? 1) > 1) out.add(parentKey(n.span))
  return out
}

function truncate(text: string, max: number): string {
  if (max <= 0) return ''
  return text.length <= max ? text : text.slice(0, Math.max(0, max - 1)) + '…'
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = ''
    }
    line = line ? `${line} ${word}` : word
    while (line.length > width) {
      lines.push(line.slice(0, width))
      line = line.slice(width)
    }
  }
  if (line) lines.push(line)
  return lines
}
