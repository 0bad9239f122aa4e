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

// Which lengths a hop-by-hop name can have: most names are lower-cased only to be compared.
const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((n) => n.length))

/** The headers the Connection header names (they are hop-by-hop too); undefined when none. */
function connectionNamed(raw: ReadonlyArray<string | Buffer>): Set<string> | undefined {
  let named: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && text(raw[i]).toLowerCase() === 'connection') {
      for (const token of text(raw[i + 1]).split(',')) {
        const t = token.trim().toLowerCase()
        if (t && t !== 'close' && t !== 'keep-alive') (named ??= new Set()).add(t)
      }
    }
  }
  return named
}

function isHopByHop(name: string, lower: string | undefined, named: Set<string> | undefined): boolean {
  if (HOP_BY_HOP_LENGTHS.has(name.length) && HOP_BY_HOP.has(lower ?? name.toLowerCase())) return true
  return named !== undefined && named.has(lower ?? name.toLowerCase())
}

/**
 * Copy of `raw` ([name, value, name, value, …]: Node's rawHeaders on requests) without
 * hop-by-hop headers, names lower-cased, repeated headers kept as arrays. The layers
 * read and set request headers by name.
 */
export function endToEndHeaders(raw: ReadonlyArray<string | Buffer>): HeaderMap {
  const named = connectionNamed(raw)
  const out: HeaderMap = {}
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase()
    if (isHopByHop(name, name, named)) continue
    const value = text(raw[i + 1])
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
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
  const named = connectionNamed(raw)
  const out: HeaderPairs = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = text(raw[i])
    if (isHopByHop(name, undefined, named)) continue
    out.push(name, text(raw[i + 1]))
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

// Header bytes are Latin-1 on the wire (RFC 9110 §5.5).
const text = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('latin1'))

export function firstHeader(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Headers the mesh itself sets; never trusted from outside the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-'
export const RESPONSE_FLAGS_HEADER = 'x-mesh-response-flags'
export const REASON_HEADER = 'x-mesh-reason'
export const SERVED_BY_HEADER = 'x-mesh-upstream'
