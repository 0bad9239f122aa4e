// Which ingress route a request path takes, and the path the service then gets: the
// data plane routes by these, `mesh load` and `canary --load` aim at them.
import type {IngressRoute} from './types.js'

/** The longest prefix wins (as Envoy orders prefix routes by specificity). */
export function matchRoute<T extends {prefix: string}>(routes: readonly T[], path: string): T | undefined {
  let best: T | undefined
  for (const r of routes) if (path.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r
  return best
}

/**
 * The path as the service sees it: the matched prefix replaced by `rewrite` (Istio's
 * `rewrite.uri`), without the double slash a plain replacement leaves (`/api/items` with
 * prefix /api and rewrite / is `/items`, not `//items`).
 */
export function rewritePath(route: IngressRoute, path: string): string {
  if (route.rewrite === undefined) return path
  const rest = path.slice(route.prefix.length)
  if (rest === '' || rest.startsWith('?')) return route.rewrite + rest
  return route.rewrite.endsWith('/') && rest.startsWith('/') ? route.rewrite + rest.slice(1) : route.rewrite + rest
}

/** `/api → api (rewrite /)`; `arrow` '->' where it goes out in a reply header (ASCII only). */
export function describeRoute(route: IngressRoute, arrow = '→'): string {
  return `${route.prefix} ${arrow} ${route.service}${route.rewrite !== undefined ? ` (rewrite ${route.rewrite})` : ''}`
}
