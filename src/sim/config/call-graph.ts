// Who calls whom in a mesh.yaml, as declared: `dependsOn` plus the calls simulated
// services make. The resilience lint walks it for retry amplification; canary `--load`
// walks it to reach a service the ingress does not route to directly.
import type {IngressRoute, MeshConfig} from './types.js'

export function callGraph(config: MeshConfig): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const s of config.services) {
    const out = new Set(s.dependsOn)
    for (const v of s.versions) {
      if (v.workload.kind === 'simulate') for (const c of v.workload.simulate.calls) out.add(c.service)
    }
    graph.set(s.name, [...out])
  }
  return graph
}

export interface IngressPath {
  route: IngressRoute
  /** The services a request on the route passes through, ending at the one asked for. */
  services: string[]
}

/**
 * The ingress route whose requests reach `service` in the fewest hops: a route to it
 * directly, else one to a service that calls it (breadth-first, routes in file order).
 */
export function ingressPathTo(config: MeshConfig, service: string): IngressPath | undefined {
  const routes = config.ingress?.routes ?? []
  const graph = callGraph(config)
  const cameFrom = new Map<string, IngressRoute | string>()
  let frontier: string[] = []
  for (const route of routes) {
    if (cameFrom.has(route.service)) continue
    cameFrom.set(route.service, route)
    frontier.push(route.service)
  }
  while (frontier.length > 0) {
    const next: string[] = []
    for (const name of frontier) {
      if (name === service) return pathBack(cameFrom, name)
      for (const callee of graph.get(name) ?? []) {
        if (cameFrom.has(callee)) continue
        cameFrom.set(callee, name)
        next.push(callee)
      }
    }
    frontier = next
  }
  return undefined
}

function pathBack(cameFrom: Map<string, IngressRoute | string>, end: string): IngressPath {
  const services = [end]
  let from = cameFrom.get(end)!
  while (typeof from === 'string') {
    services.unshift(from)
    from = cameFrom.get(from)!
  }
  return {route: from, services}
}

/**
 * The order `mesh up` starts services in, as docker compose honours `depends_on`: each
 * group's dependencies are all in earlier groups, so a service starts once what it calls is
 * healthy. Groups keep file order. A cycle (which `mesh validate` rejects) goes last, whole.
 */
export function startOrder(config: MeshConfig): string[][] {
  const graph = callGraph(config)
  const started = new Set<string>()
  const groups: string[][] = []
  let left = config.services.map((s) => s.name)
  while (left.length > 0) {
    const ready = left.filter((name) => (graph.get(name) ?? []).every((dep) => started.has(dep) || !graph.has(dep)))
    const group = ready.length > 0 ? ready : left
    groups.push(group)
    for (const name of group) started.add(name)
    left = left.filter((name) => !started.has(name))
  }
  return groups
}

/**
 * The services named and everything they call, directly or not: what `mesh up SERVICE...`
 * starts. A `required: false` dependency is left out when `leaveOut` says so (its profile
 * is off), as compose starts the service without it.
 */
export function withDependencies(config: MeshConfig, names: readonly string[], leaveOut: (optional: string) => boolean = () => false): Set<string> {
  const graph = callGraph(config)
  const optional = new Map(config.services.map((s) => [s.name, s.optionalDependsOn ?? []]))
  const out = new Set<string>()
  // Depth-first, in the order a recursive walk would add them, without recursion: a
  // 5,000-deep dependency chain would overflow the call stack.
  const stack = [...names].reverse()
  while (stack.length > 0) {
    const name = stack.pop()!
    if (out.has(name) || !graph.has(name)) continue
    out.add(name)
    const deps = graph.get(name)!.filter((dep) => !(optional.get(name)!.includes(dep) && leaveOut(dep)))
    for (let i = deps.length - 1; i >= 0; i--) stack.push(deps[i])
  }
  return out
}
