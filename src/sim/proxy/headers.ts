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
  const out: HeaderMap = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase()
    if (HOP_BY_HOP_LENGTHS.has(name.length) && HOP_BY_HOP.has(name)) {
      if (name === 'connection') named = namedBy(text(raw[i + 1]), named)
      continue
    }
    const value = text(raw[i + 1])
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  if (named) for (const n of named) delete out[n]
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
