// Where `mesh top` draws each service and each call: columns by call depth from the
// ingress (breadth-first over dependsOn), rows ordered to cross fewer edges. Pure
// and deterministic: same services and size, same boxes and edges.
//
//   depth 0        depth 1          depth 2        unreachable
//   ┌────────┐    ┌─────────┐      ┌───────────┐   ┌───────┐
//   │frontend│─┬─▶│ catalog │──┬──▶│ inventory │   │ batch │
//   └────────┘ │  └─────────┘  └──▶│ recomm…   │   └───────┘
//              └─▶[cart]──────────▶[payments]      (compact boxes when rows run short)

export interface TopologyService {
  name: string
  dependsOn: string[]
}

export interface TopologyInput {
  services: TopologyService[]
  /** Services the ingress routes to: depth 0. */
  roots: string[]
  /** Calls seen that are not in dependsOn (e.g. through the forward proxy). */
  extraEdges?: Array<{from: string; to: string}>
}

export interface LayoutBox {
  service: string
  x: number
  y: number
  w: number
  h: number
  /** The name as it fits the box (truncated with … when needed). */
  label: string
  column: number
}

export interface Point {
  x: number
  y: number
}

export interface LayoutEdge {
  from: string
  to: string
  /** An orthogonal polyline; the last point is where the arrow head goes. */
  points: Point[]
  /** The arrow head: ▶ into a box's left side, ◀ into its right side (calls back to an earlier column). */
  arrow: '▶' | '◀'
  /** Free cells on the last segment where the edge's label (rps) can go. */
  labelAt: Point & {width: number}
}

export interface TopologyLayout {
  width: number
  height: number
  boxes: LayoutBox[]
  edges: LayoutEdge[]
  /** Services that did not fit at all (the caller says "+N more: widen the terminal"). */
  hidden: string[]
  /** Gaps between columns with more callers than channels: there, calls share a line and who calls whom is lost. */
  crowdedGaps: number
}

// Box heights and the row gap between boxes, tried in order: bordered boxes with
// air between them, bordered boxes packed, then one-line `[name]` boxes.
const MODES = [
  {h: 3, gap: 1, minW: 6},
  {h: 3, gap: 0, minW: 6},
  {h: 1, gap: 0, minW: 4},
] as const
// Columns between depth columns: a channel for vertical runs, room for an rps label, the arrow.
const MAX_GAP = 12
const MIN_GAP = 3
// A very long name is cut here even when the screen is wide, so columns stay balanced.
const MAX_BOX_W = 24

export function layoutTopology(input: TopologyInput, width: number, height: number): TopologyLayout {
  const W = Math.max(1, Math.floor(width))
  const H = Math.max(1, Math.floor(height))
  const names = uniqueNames(input.services)
  const known = new Set(names)
  const index = new Map(names.map((n, i) => [n, i]))
  const edgeList = collectEdges(input, known)
  const out = new Map<string, string[]>(names.map((n) => [n, []]))
  const inc = new Map<string, string[]>(names.map((n) => [n, []]))
  for (const e of edgeList) {
    out.get(e.from)!.push(e.to)
    inc.get(e.to)!.push(e.from)
  }

  const columns = orderColumns(assignColumns(names, input.roots, out, known), out, inc, index)
  const placed = place(columns, W, H, edgeList)
  const byName = new Map(placed.boxes.map((b) => [b.service, b]))
  const {edges, crowdedGaps} = routeEdges(edgeList, byName, placed.columnX, placed.columnEnd, W)
  return {width: W, height: H, boxes: placed.boxes, edges, hidden: placed.hidden, crowdedGaps}
}

function uniqueNames(services: TopologyService[]): string[] {
  const seen = new Set<string>()
  const names: string[] = []
  for (const s of services) {
    if (seen.has(s.name)) continue
    seen.add(s.name)
    names.push(s.name)
  }
  return names
}

function collectEdges(input: TopologyInput, known: Set<string>): Array<{from: string; to: string}> {
  const seen = new Set<string>()
  const edges: Array<{from: string; to: string}> = []
  const add = (from: string, to: string) => {
    const key = `${from}\u0000${to}`
    // A self-call has nowhere to go on a grid; the services table still shows its traffic.
    if (from === to || !known.has(from) || !known.has(to) || seen.has(key)) return
    seen.add(key)
    edges.push({from, to})
  }
  for (const s of input.services) for (const d of s.dependsOn) add(s.name, d)
  for (const e of input.extraEdges ?? []) add(e.from, e.to)
  return edges
}

/** Breadth-first depth from the roots; what they never reach goes in one last column. */
function assignColumns(names: string[], rootsIn: string[], out: Map<string, string[]>, known: Set<string>): string[][] {
  let roots = rootsIn.filter((r) => known.has(r))
  if (roots.length === 0) {
    // No ingress: start from the services nobody calls, as a reader would.
    const called = new Set([...out.values()].flat())
    roots = names.filter((n) => !called.has(n))
  }
  const depth = new Map<string, number>()
  let frontier = [...new Set(roots)]
  for (const r of frontier) depth.set(r, 0)
  for (let d = 1; frontier.length > 0; d++) {
    const next: string[] = []
    for (const n of frontier) {
      for (const m of out.get(n) ?? []) {
        if (depth.has(m)) continue
        depth.set(m, d)
        next.push(m)
      }
    }
    frontier = next
  }
  const maxDepth = Math.max(-1, ...depth.values())
  const columns: string[][] = Array.from({length: maxDepth + 1}, () => [])
  const unreachable: string[] = []
  for (const n of names) {
    const d = depth.get(n)
    if (d === undefined) unreachable.push(n)
    else columns[d].push(n)
  }
  if (unreachable.length) columns.push(unreachable)
  return columns
}

/** Barycentre sweeps: down by callers' positions, up by callees', down again; ties keep config order. */
function orderColumns(
  columns: string[][],
  out: Map<string, string[]>,
  inc: Map<string, string[]>,
  index: Map<string, number>,
): string[][] {
  const pos = new Map<string, number>()
  const record = () => columns.forEach((col) => col.forEach((n, i) => pos.set(n, col.length > 1 ? i / (col.length - 1) : 0.5)))
  const sortBy = (col: string[], neighbours: Map<string, string[]>) => {
    const key = new Map<string, number>()
    for (const n of col) {
      const ps = (neighbours.get(n) ?? []).map((m) => pos.get(m)).filter((p): p is number => p !== undefined)
      key.set(n, ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : pos.get(n)!)
    }
    col.sort((a, b) => key.get(a)! - key.get(b)! || pos.get(a)! - pos.get(b)! || index.get(a)! - index.get(b)!)
  }
  record()
  for (let i = 1; i < columns.length; i++) {
    sortBy(columns[i], inc)
    record()
  }
  for (let i = columns.length - 2; i >= 0; i--) {
    sortBy(columns[i], out)
    record()
  }
  for (let i = 1; i < columns.length; i++) {
    sortBy(columns[i], inc)
    record()
  }
  return columns
}

interface Placed {
  boxes: LayoutBox[]
  hidden: string[]
  /** Left x of each depth column, and one past its right edge. */
  columnX: number[]
  columnEnd: number[]
}

function place(columns: string[][], W: number, H: number, edges: Array<{from: string; to: string}>): Placed {
  const nCols = columns.length
  if (nCols === 0) return {boxes: [], hidden: [], columnX: [], columnEnd: []}
  const last = new Set(columns[nCols - 1])
  // Calls back from the last column need a channel to its right.
  const tail = edges.some((e) => last.has(e.from) && !isForward(e, columns)) ? MIN_GAP : 0
  const longest = Math.max(...columns.flat().map((n) => n.length))

  // The mode whose boxes show the most of each name wins; on a tie, the roomier (earlier) one.
  let best: {mode: (typeof MODES)[number]; rowsFit: number; subCols: number[]; bw: number; gap: number} | undefined
  for (const mode of MODES) {
    const rowsFit = Math.max(1, Math.floor((H + mode.gap) / (mode.h + mode.gap)))
    const subCols = columns.map((c) => Math.max(1, Math.ceil(c.length / rowsFit)))
    const slots = subCols.reduce((a, b) => a + b, 0)
    const fixed = slots - nCols + tail
    const bwMax = Math.floor((W - fixed - (nCols - 1) * MIN_GAP) / slots)
    if (bwMax < mode.minW) continue
    const bw = Math.min(bwMax, Math.max(mode.minW, Math.min(MAX_BOX_W, longest + (mode.h === 3 ? 4 : 2))))
    const spare = W - fixed - slots * bw
    const gap = nCols > 1 ? Math.min(MAX_GAP, Math.floor(spare / (nCols - 1))) : 0
    // On a tie, fewer sub-columns: a call out of a box in a column's first sub-column runs through the box beside it.
    const shows = Math.min(bw - 2, longest)
    const shown = best && Math.min(best.bw - 2, longest)
    if (!best || shows > shown! || (shows === shown && slots < best.subCols.reduce((a, b) => a + b, 0))) best = {mode, rowsFit, subCols, bw, gap}
  }
  if (best) return grid(columns, best.subCols, {h: best.mode.h, gap: best.mode.gap, bw: best.bw, colGap: best.gap, H})
  // Not even one-line boxes fit every column: show the columns that fit, name the rest.
  const mode = MODES[MODES.length - 1]
  const rowsFit = Math.max(1, Math.floor(H / mode.h))
  const perCol = mode.minW + MIN_GAP
  const fitCols = Math.max(1, Math.floor((W + MIN_GAP) / perCol))
  const kept: string[][] = []
  const hidden: string[] = []
  let used = 0
  for (const col of columns) {
    const need = Math.max(1, Math.ceil(col.length / rowsFit))
    if (used + need <= fitCols) {
      kept.push(col)
      used += need
    } else hidden.push(...col)
  }
  const subCols = kept.map((c) => Math.max(1, Math.ceil(c.length / rowsFit)))
  const placed = grid(kept, subCols, {h: mode.h, gap: 0, bw: mode.minW, colGap: MIN_GAP, H})
  // A box that starts past the right edge is hidden too (narrower than one box).
  const fits = placed.boxes.filter((b) => b.x + b.w <= W)
  hidden.push(...placed.boxes.filter((b) => b.x + b.w > W).map((b) => b.service))
  return {...placed, boxes: fits, hidden}
}

function isForward(e: {from: string; to: string}, columns: string[][]): boolean {
  return columns.findIndex((c) => c.includes(e.to)) > columns.findIndex((c) => c.includes(e.from))
}

function grid(
  columns: string[][],
  subCols: number[],
  o: {h: number; gap: number; bw: number; colGap: number; H: number},
): Placed {
  const boxes: LayoutBox[] = []
  const columnX: number[] = []
  const columnEnd: number[] = []
  let x = 0
  columns.forEach((col, ci) => {
    columnX.push(x)
    const perSub = Math.ceil(col.length / subCols[ci])
    for (let s = 0; s < subCols[ci]; s++) {
      const part = col.slice(s * perSub, (s + 1) * perSub)
      const used = part.length * o.h + Math.max(0, part.length - 1) * o.gap
      // Centred vertically: a lone root sits level with the middle of what it calls.
      const top = Math.max(0, Math.floor((o.H - used) / 2))
      part.forEach((service, i) => {
        boxes.push({service, x, y: top + i * (o.h + o.gap), w: o.bw, h: o.h, label: fitLabel(service, o.bw - 2), column: ci})
      })
      x += o.bw + (s < subCols[ci] - 1 ? 1 : 0)
    }
    columnEnd.push(x)
    x += o.colGap
  })
  return {boxes, hidden: [], columnX, columnEnd}
}

/** `recommendations` in 8 cells → `recomme…`. */
export function fitLabel(name: string, cells: number): string {
  if (cells <= 0) return ''
  if (name.length <= cells) return name
  if (cells === 1) return '…'
  return `${name.slice(0, cells - 1)}…`
}

function routeEdges(
  edges: Array<{from: string; to: string}>,
  byName: Map<string, LayoutBox>,
  columnX: number[],
  columnEnd: number[],
  W: number,
): {edges: LayoutEdge[]; crowdedGaps: number} {
  const routed: LayoutEdge[] = []
  const lanesIn = new Map<string, number>()
  // Each source gets its own channel (vertical run) in a gap, so two callers' runs do not merge.
  const channelRank = new Map<string, number>()
  const rankIn = (gapKey: string, source: LayoutBox) => {
    const key = `${gapKey}\u0000${source.service}`
    if (!channelRank.has(key)) {
      const n = [...channelRank.keys()].filter((k) => k.startsWith(`${gapKey}\u0000`)).length
      channelRank.set(key, n)
    }
    return channelRank.get(key)!
  }
  // Sources in reading order give channels left to right, top to bottom.
  const ordered = [...edges].sort((a, b) => {
    const A = byName.get(a.from)
    const B = byName.get(b.from)
    if (!A || !B) return 0
    return A.x - B.x || A.y - B.y
  })
  for (const e of ordered) {
    const a = byName.get(e.from)
    const b = byName.get(e.to)
    if (!a || !b) continue
    const ya = a.y + Math.floor(a.h / 2)
    const yb = b.y + Math.floor(b.h / 2)
    const x0 = a.x + a.w
    if (b.column > a.column) {
      // The gap just left of the callee's column: fan-out shares the caller's row, then splits.
      const gapStart = columnEnd[b.column - 1]
      const gapEnd = columnX[b.column]
      // One cell of line leaves the box before the first bend, so the bend does not read as part of the box.
      const lanes = Math.max(1, gapEnd - gapStart - 3)
      lanesIn.set(`g${b.column}`, lanes)
      const cx = Math.max(gapStart, Math.min(gapStart + 1 + (rankIn(`g${b.column}`, a) % lanes), b.x - 2))
      const end = {x: b.x - 1, y: yb}
      const points = simplify([{x: x0, y: ya}, {x: Math.max(cx, x0), y: ya}, {x: Math.max(cx, x0), y: yb}, end])
      routed.push({from: e.from, to: e.to, points, arrow: '▶', labelAt: {x: Math.max(cx, x0) + 1, y: yb, width: Math.max(0, end.x - Math.max(cx, x0) - 1)}})
    } else {
      // A call back to this or an earlier column: out the right, down or up the gap, into the callee's right side.
      const gapStart = columnEnd[a.column]
      const gapEnd = a.column + 1 < columnX.length ? columnX[a.column + 1] : W
      const lanes = Math.max(1, gapEnd - gapStart - 1)
      lanesIn.set(`b${a.column}`, lanes)
      const cx = Math.min(gapStart + 1 + (rankIn(`b${a.column}`, a) % lanes), W - 1)
      const end = {x: b.x + b.w, y: yb}
      const points = simplify([{x: x0, y: ya}, {x: cx, y: ya}, {x: cx, y: yb}, end])
      const lo = Math.min(end.x, cx)
      routed.push({from: e.from, to: e.to, points, arrow: '◀', labelAt: {x: lo + 1, y: yb, width: Math.max(0, Math.abs(cx - end.x) - 1)}})
    }
  }
  // Back in input order, so callers see edges as they gave them.
  const key = (e: {from: string; to: string}) => `${e.from}\u0000${e.to}`
  const order = new Map(edges.map((e, i) => [key(e), i]))
  const callers = new Map<string, number>()
  for (const k of channelRank.keys()) callers.set(k.split('\u0000')[0], (callers.get(k.split('\u0000')[0]) ?? 0) + 1)
  const crowdedGaps = [...lanesIn].filter(([gap, lanes]) => (callers.get(gap) ?? 0) > lanes).length
  return {edges: routed.sort((p, q) => order.get(key(p))! - order.get(key(q))!), crowdedGaps}
}

/** Drops repeated points and middle points on a straight run. */
function simplify(points: Point[]): Point[] {
  const out: Point[] = []
  for (const p of points) {
    const prev = out[out.length - 1]
    if (prev && prev.x === p.x && prev.y === p.y) continue
    const before = out[out.length - 2]
    if (before && prev && ((before.x === prev.x && prev.x === p.x) || (before.y === prev.y && prev.y === p.y))) out.pop()
    out.push(p)
  }
  return out
}

export interface TopologyView {
  layout: TopologyLayout
  /** Services drawn, of `total`; fewer when the whole mesh would not be legible. */
  shown: number
  total: number
  /** What part is drawn, when not the whole mesh: `"cat" and its neighbours`, `2 calls deep`, `cart and its neighbours`. */
  part?: string
}

/**
 * The topology as it fits: the whole mesh when it is legible (every service shows, three in
 * four names whole, no two callers sharing a line); otherwise a part of it, so 100 services stay legible: the services matching
 * `filter` with their callers and callees, else the `selected` service with its callers and
 * callees, else the mesh from the ingress as many calls deep as fits.
 */
export function legibleTopology(input: TopologyInput, width: number, height: number, focus: {filter?: string; selected?: string} = {}): TopologyView {
  const total = new Set(input.services.map((s) => s.name)).size
  const whole = layoutTopology(input, width, height)
  if (legible(whole)) return {layout: whole, shown: total, total}
  // A part leaves its last line for saying which part it is.
  const view = (part: TopologyInput, what: string): TopologyView => ({layout: layoutTopology(part, width, Math.max(1, height - 1)), shown: part.services.length, total, part: what})
  const f = focus.filter?.trim().toLowerCase()
  const matching = f ? input.services.filter((s) => s.name.toLowerCase().includes(f)).map((s) => s.name) : []
  // Around a focus: with its callers and callees; when they crowd, its callees; when they do too, the focus alone.
  const focused = (names: string[], what: string): TopologyView => {
    const candidates: Array<[TopologyInput, string]> = [
      [around(input, names, 1, true), `${what} with callers and callees`],
      [around(input, names, 1, false), `${what} with callees`],
      [around(input, names, 0, false), what],
    ]
    const views = candidates.map(([part, text]) => view(part, text))
    return views.find((v) => legible(v.layout)) ?? views[views.length - 1]
  }
  if (matching.length > 0) return focused(matching, `"${focus.filter!.trim()}"`)
  if (focus.selected && input.services.some((s) => s.name === focus.selected)) return focused([focus.selected], focus.selected)
  const roots = input.roots.length > 0 ? input.roots : input.services.filter((s) => !input.services.some((o) => o.dependsOn.includes(s.name))).map((s) => s.name)
  let best = view(around(input, roots, 1, false), '1 call deep from the ingress')
  for (let hops = 2; ; hops++) {
    const part = around(input, roots, hops, false)
    if (part.services.length === best.shown) return best
    const next = view(part, `${hops} calls deep from the ingress`)
    if (!legible(next.layout)) return best
    best = next
  }
}

/** Every service shows, three in four names whole, no column wraps, and every caller has a line of its own. */
function legible(layout: TopologyLayout): boolean {
  const cut = layout.boxes.filter((b) => b.label !== b.service).length
  const columns = new Set(layout.boxes.map((b) => b.column)).size
  const wrapped = new Set(layout.boxes.map((b) => `${b.column}:${b.x}`)).size > columns
  return layout.hidden.length === 0 && cut * 4 <= layout.boxes.length && layout.crowdedGaps === 0 && !wrapped
}

/** `focus`, what it calls up to `hops` calls away, and (with `callers`) its direct callers; only the calls among them. */
function around(input: TopologyInput, focus: string[], hops: number, callers: boolean): TopologyInput {
  const calls = new Map<string, string[]>()
  const add = (from: string, to: string) => calls.set(from, [...(calls.get(from) ?? []), to])
  for (const s of input.services) for (const d of s.dependsOn) add(s.name, d)
  for (const e of input.extraEdges ?? []) add(e.from, e.to)
  const keep = new Set(focus)
  let frontier = [...keep]
  for (let h = 0; h < hops && frontier.length > 0; h++) {
    const next: string[] = []
    for (const n of frontier) for (const m of calls.get(n) ?? []) if (!keep.has(m)) keep.add(m), next.push(m)
    frontier = next
  }
  if (callers) for (const [from, tos] of calls) if (tos.some((t) => focus.includes(t))) keep.add(from)
  return {
    services: input.services.filter((s) => keep.has(s.name)).map((s) => ({name: s.name, dependsOn: s.dependsOn.filter((d) => keep.has(d))})),
    // Drawn from what nobody in the part calls: a focus's callers come first, however deep they sit in the mesh.
    roots: [],
    extraEdges: input.extraEdges?.filter((e) => keep.has(e.from) && keep.has(e.to)),
  }
}
