// The critical path of a trace: the spans whose time decided when the trace ended, found
// as Jaeger's trace view finds it. Walking backwards from a span's end, the child that
// finished last blocked it; descend into that child, and when a span has no child left
// that finished before the point we came back from, return to its parent at the moment
// the span started and look for the child that finished last before *that*. Sequential
// calls are therefore all on the path; of parallel calls only the one that ended last.
//
// A child is clipped to its parent's window first (skewed clocks put a server span a
// little outside its client span); a child wholly outside it blocked nothing.

export interface TimedNode<T> {
  start: number
  end: number
  children: T[]
}

interface Window {
  start: number
  end: number
}

/** The nodes on the critical path of the tree whose top-level nodes are `top` (several top-level nodes are treated as siblings). */
export function criticalPath<T extends TimedNode<T>>(top: T[]): Set<T> {
  const onPath = new Set<T>()
  if (top.length === 0) return onPath
  const virtual = {start: Math.min(...top.map((n) => n.start)), end: Math.max(...top.map((n) => n.end)), children: top}
  const window = new Map<TimedNode<T>, Window>([[virtual, virtual]])
  const parentOf = new Map<TimedNode<T>, TimedNode<T>>()

  // Children in their parent's window, top down so each parent's window is known.
  const inWindow = new Map<TimedNode<T>, T[]>()
  const queue: Array<TimedNode<T>> = [virtual]
  for (let i = 0; i < queue.length; i++) {
    const parent = queue[i]
    const w = window.get(parent)!
    const kept: T[] = []
    for (const child of parent.children) {
      if (window.has(child) || child.end < w.start || child.start > w.end) continue
      window.set(child, {start: Math.max(child.start, w.start), end: Math.min(child.end, w.end)})
      parentOf.set(child, parent)
      kept.push(child)
      queue.push(child)
    }
    inWindow.set(parent, kept)
  }

  let current: TimedNode<T> = virtual
  // The time we came back to `current` from: only children that finished by then blocked it.
  let before = Number.POSITIVE_INFINITY
  for (;;) {
    let last: T | undefined
    for (const child of inWindow.get(current)!) {
      const end = window.get(child)!.end
      // `<=`: a call issued the moment the previous one returned waited for it.
      if (!onPath.has(child) && end <= before && (!last || end > window.get(last)!.end)) last = child
    }
    if (last) {
      onPath.add(last)
      current = last
      before = Number.POSITIVE_INFINITY
      continue
    }
    const parent = parentOf.get(current)
    if (!parent) return onPath
    before = window.get(current)!.start
    current = parent
  }
}
