// Header hygiene for a proxy hop (RFC 9110 §7.6.1). Hop-by-hop headers, and every
// header the Connection header names, belong to one connection and must not be
// forwarded in either direction; undici would silently forward some of them.
import {latin1Of} from '../buffer-slices.js'

export type HeaderMap = Record<string, string | string[]>

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // undici refuses `expect`; the proxy answers 100-continue itself by reading the body.
  'expect',
  'http2-settings',
])

// Which lengths a hop-by-hop name can have: most names are lower-cased only to be compared.
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((n) => n.length))

/**
 * Adds the headers a Connection value names (they are hop-by-hop too) to `into`. The
 * usual values, keep-alive and close, name none.
 */
function namedBy(value: string, into: Set<string> | undefined): Set<string> | undefined {
  const v = value.toLowerCase()
  if (v === 'keep-alive' || v === 'close') return into
  for (const token of v.split(',')) {
    const t = token.trim()
    if (t && t !== 'close' && t !== 'keep-alive') (into ??= new Set()).add(t)
  }
  return into
}

/**
 * Copy of `raw` ([name, value, name, value, …]: Node's rawHeaders on requests) without
 * hop-by-hop headers, names lower-cased, repeated headers kept as arrays. The layers
 * read and set request headers by name. One pass: what Connection names (rare) is
 * taken out at the end.
 */
export function endToEndHeaders(raw: ReadonlyArray<string | Buffer>): HeaderMap {
  let named: Set<string> | undefined
  let authority: string | undefined
  let http2 = false
  const out: HeaderMap = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase()
    // HTTP/2's pseudo-headers (:method, :path…) are the request line; :authority is its Host.
    if (name.charCodeAt(0) === 58) {
      http2 = true
      if (name === ':authority') authority = text(raw[i + 1])
      continue
    }
    if (HOP_BY_HOP_LENGTHS.has(name.length) && HOP_BY_HOP.has(name)) {
      if (name === 'connection') named = namedBy(text(raw[i + 1]), named)
      // In HTTP/2 (its pseudo-headers come first) `te: trailers` is end-to-end (RFC 9113
      // §8.2.2), and gRPC servers want it passed on, as Envoy does.
      else if (name === 'te' && http2 && text(raw[i + 1]).toLowerCase() === 'trailers') out.te = 'trailers'
      continue
    }
    const value = text(raw[i + 1])
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  if (named) for (const n of named) delete out[n]
  if (authority !== undefined && out.host === undefined) out.host = authority
  return out
}

/** A header list as node:http's writeHead takes it: [name, value, name, value, …]. */
export type HeaderPairs = string[]

/**
 * The end-to-end headers of a response (undici's raw Buffer pairs) as a list, names as
 * the instance sent them: nothing reads a response's headers by name, so they go to the
 * client without an object in between.
 */
export function endToEndPairs(raw: ReadonlyArray<string | Buffer>): HeaderPairs {
  let named: Set<string> | undefined
  const out: HeaderPairs = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i])
    // Most names are lower-cased only when their length could make them hop-by-hop.
    if (HOP_BY_HOP_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') named = namedBy(text(raw[i + 1]), named)
        continue
      }
    }
    out.push(name, text(raw[i + 1]))
  }
  if (!named) return out
  const kept: HeaderPairs = []
  for (let i = 0; i < out.length; i += 2) if (!named.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1])
  return kept
}

/**
 * Headers or trailers as a list: HTTP/1.1's raw Buffer pairs (undici's), or node:http2's
 * object, its pseudo-headers (:status) left out. None (the usual trailers) is undefined.
 */
export function trailerPairs(trailers: unknown): HeaderPairs | undefined {
  if (!trailers) return undefined
  if (Array.isArray(trailers)) return trailers.length === 0 ? undefined : endToEndPairs(trailers as Buffer[])
  const out: HeaderPairs = []
  const object = trailers as Record<string, string | string[] | number | undefined>
  for (const name in object) {
    if (name.charCodeAt(0) === 58) continue
    const value = object[name]
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else if (value !== undefined) out.push(name, String(value))
  }
  return out.length === 0 ? undefined : out
}

/** Whether a header list has `name` (lower case), in any case. */
export function hasHeader(pairs: HeaderPairs, name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].length === name.length && pairs[i].toLowerCase() === name) return true
  return false
}

/** A header list as an object (names lower-cased, repeats as arrays), for APIs that take one (addTrailers). */
export function headerObject(pairs: HeaderPairs): HeaderMap {
  const out: HeaderMap = {}
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i].toLowerCase()
    const prev = out[name]
    if (prev === undefined) out[name] = pairs[i + 1]
    else if (Array.isArray(prev)) prev.push(pairs[i + 1])
    else out[name] = [prev, pairs[i + 1]]
  }
  return out
}

/**
 * Whether a request carries a body (Content-Length or Transfer-Encoding), read from the
 * raw pairs: Node's `req.headers` is built on first use, a second header object per request.
 */
export function hasRequestBody(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]
    if ((n.length === 14 && n.toLowerCase() === 'content-length') || (n.length === 17 && n.toLowerCase() === 'transfer-encoding')) return true
  }
  return false
}

// Header bytes are Latin-1 on the wire (RFC 9110 §5.5); ~10 strings per response.
const text = (v: string | Buffer): string => (typeof v === 'string' ? v : latin1Of(v))

export function firstHeader(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Headers the mesh itself sets; never trusted from outside the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-'
export const RESPONSE_FLAGS_HEADER = 'x-mesh-response-flags'
export const REASON_HEADER = 'x-mesh-reason'
export const SERVED_BY_HEADER = 'x-mesh-upstream'
/** On a response whose request waited for an instance to cold-start: how long, in ms (the activator's). */
export const COLD_START_HEADER = 'x-mesh-cold-start'
