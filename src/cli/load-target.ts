// Where `mesh load TARGET` sends its requests: a URL as given, or a name resolved
// against the running mesh's ingress (the one address outside callers use).
//
//   'http://…' / 'host:port' ──────────────────────────▶ that origin, its path
//   'ingress'                ──status().ingress.url────▶ ingress, --path or '/'
//   'catalog'                ──ingress route to catalog─▶ ingress + the route's prefix
import {MeshError, serviceNotFound} from '../sim/errors.js'
import type {MeshStatus} from '../sim/control/status.js'
import {describeRoute, matchRoute} from '../sim/config/ingress-routes.js'
import {meshPaths} from '../sim/control/state-file.js'
import {caCertPath} from '../sim/security/ca-file.js'
import path from 'node:path'

export interface LoadTarget {
  /** Origin to connect to, e.g. 'http://127.0.0.1:8000'. */
  origin: string
  /** Origin-form path (and query) every request asks for. */
  path: string
  /** What the target was resolved from, for the report line. */
  via: 'url' | 'ingress' | 'service'
  /** The mesh CA's certificate, when the origin is the HTTPS ingress. */
  caFile?: string
}

/** TARGET names a URL (scheme, or host:port) rather than something in the mesh. */
export function isUrlTarget(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) || /^[\w.-]+:\d+(\/|$)/.test(target) || /^\[[0-9a-f:]+\]:\d+/i.test(target)
}

/** A URL target on its own: no mesh needed. `path` (--path) wins over the URL's own path. */
export function urlTarget(target: string, path?: string): LoadTarget {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `http://${target}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw badTarget(`"${target}" is not a valid URL.`, ['Give a URL such as http://127.0.0.1:8000/items, a service name, or `ingress`.'])
  }
  if (url.protocol !== 'http:') {
    throw badTarget(`mesh load speaks plain HTTP only; "${target}" uses ${url.protocol.slice(0, -1)}.`, [
      'Use an http:// URL (every mesh listener is plain HTTP on 127.0.0.1).',
    ])
  }
  return {origin: url.origin, path: checkPath(path ?? url.pathname + url.search), via: 'url'}
}

/**
 * `ingress`, or a service the ingress routes to. A service the ingress cannot reach
 * is an error naming the routes, never a silent fallback to some other address.
 */
export function meshTarget(target: string, status: MeshStatus, requested?: string): LoadTarget {
  const ingress = status.ingress
  const known = status.services.map((s) => s.name)
  if (target !== 'ingress' && !known.includes(target)) {
    throw serviceNotFound(target, known, ['Give a service name, `ingress`, or a URL.'])
  }
  if (!ingress) {
    throw badTarget(`mesh "${status.name}" has no ingress, so "${target}" cannot be reached from outside.`, [
      'Add an ingress: block to mesh.yaml, or give a URL (a sidecar address from `mesh status`).',
    ])
  }
  // With ingress.tls.redirect the HTTP port answers every request 308: load goes where that points.
  const origin = ingress.redirect && ingress.httpsUrl ? {origin: ingress.httpsUrl, caFile: caCertPath(meshPaths(path.dirname(status.configFile)).ca)} : {origin: ingress.url}
  if (target === 'ingress') return {...origin, path: checkPath(requested ?? '/'), via: 'ingress'}

  const routes = ingress.routes.filter((r) => r.service === target)
  const listed = ingress.routes.map((r) => describeRoute(r)).join(', ') || 'none'
  if (routes.length === 0) {
    throw badTarget(`the ingress does not route to "${target}".`, [
      `Ingress routes: ${listed}`,
      `Add a route to ${target} under ingress.routes in mesh.yaml, or load a URL or \`ingress --path …\` instead.`,
    ])
  }
  const chosen = checkPath(requested ?? routes.reduce((a, b) => (b.prefix.length < a.prefix.length ? b : a)).prefix)
  // The ingress picks by longest prefix: the path must land on this service, not a sibling route.
  const lands = matchRoute(ingress.routes, chosen)
  if (lands?.service !== target) {
    throw badTarget(
      `path ${chosen} does not reach "${target}" through the ingress: ${lands ? `it goes to "${lands.service}"` : 'no route matches it'}.`,
      [`Ingress routes: ${listed}`],
    )
  }
  return {...origin, path: chosen, via: 'service'}
}

/** `--header k=v` (or curl's `k: v`) → a header map; names lowercased, repeated names joined by ', '. */
export function parseHeaders(list: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of list) {
    const eq = item.indexOf('=')
    const colon = item.indexOf(':')
    const at = eq === -1 ? colon : colon === -1 ? eq : Math.min(eq, colon)
    const name = (at === -1 ? '' : item.slice(0, at)).trim().toLowerCase()
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw new MeshError('MESH_BAD_FLAG', `--header "${item}" is not name=value.`, {hints: ['Example: --header x-user=alice']})
    }
    const value = item.slice(at + 1).trim()
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`
  }
  return out
}

function checkPath(path: string): string {
  const p = path === '' ? '/' : path
  if (!p.startsWith('/')) throw new MeshError('MESH_BAD_FLAG', `--path must start with /, got "${path}".`)
  return p
}

function badTarget(message: string, hints: string[]): MeshError {
  return new MeshError('MESH_BAD_FLAG', message, {hints})
}
