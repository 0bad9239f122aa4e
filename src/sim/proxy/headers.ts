// Header hygiene for a proxy hop (RFC 9110 §7.6.1). Hop-by-hop headers, and every
// header the Connection header names, belong to one connection and must not be
// forwarded in either direction; undici would silently forward some of them.

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

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name)
}

/**
 * Copy of `raw` (Node's rawHeaders: [name, value, name, value, …]) without
 * hop-by-hop headers, names lower-cased, repeated headers kept as arrays.
 */
export function endToEndHeaders(raw: string[]): HeaderMap {
  let named: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      for (const token of raw[i + 1].split(',')) {
        const t = token.trim().toLowerCase()
        if (t) (named ??= new Set()).add(t)
      }
    }
  }
  const out: HeaderMap = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue
    const value = raw[i + 1]
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  return out
}

/** The same filter for a header object (undici's response headers). */
export function stripHopByHop(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const connection = headers['connection']
  let named: Set<string> | undefined
  if (connection) {
    for (const token of String(connection).split(',')) {
      const t = token.trim().toLowerCase()
      if (t) (named ??= new Set()).add(t)
    }
  }
  const out: HeaderMap = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue
    out[lower] = value
  }
  return out
}

export function firstHeader(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Headers the mesh itself sets; never trusted from outside the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-'
export const RESPONSE_FLAGS_HEADER = 'x-mesh-response-flags'
export const REASON_HEADER = 'x-mesh-reason'
export const SERVED_BY_HEADER = 'x-mesh-upstream'
