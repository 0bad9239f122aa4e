// The one normal form of a request path, computed once where a request enters the mesh
// and forwarded as such: authorization, ingress routes, traffic routes and fault selectors
// all judge the path the service then gets, so `/public/../admin` cannot pass as /public/*
// and reach the service as /admin. Pure: the data plane asks, and turns a rejection into
// its own 400.
//
// Istio's strictest setting, `pathNormalization: DECODE_AND_MERGE_SLASHES`, in its order:
//   1. percent-decoding, once (no double decoding: `%252e` stays): the unreserved characters
//      of RFC 3986 §2.3 (A-Z a-z 0-9 - . _ ~), and the encoded slash and backslash
//      (%2F, %5C); every other escape is kept as sent, letter case included;
//   2. a backslash is a slash (Envoy's normalize_path, as browsers and Windows servers read it);
//   3. RFC 3986 §5.2.4 dot-segment removal (`..` above the root stays at the root);
//   4. runs of slashes merged into one.
// Rejected (400): an invalid escape, %00, a fragment (`#`, as Envoy rejects it), a space, a
// control or non-ASCII character, and a target that is no path. The query goes on untouched.

/** Why the mesh refuses a request path (the data plane answers 400 with it). */
export interface PathRejection {
  readonly reason: string
}

const SLASH = 0x2f
const DOT = 0x2e
const PERCENT = 0x25
const BACKSLASH = 0x5c
const QUESTION = 0x3f
const HASH = 0x23

/**
 * The normal form of a request target: origin-form (`/a/b?q`), or the path of an
 * absolute-form one (`http://host/a/b?q`, as HTTP_PROXY clients send). A target already
 * normal (nearly every request) comes back as the very same string, after one scan.
 */
export function normalizePath(target: string): string | PathRejection {
  if (target.charCodeAt(0) !== SLASH) {
    // OPTIONS * names no path at all.
    if (target === '*') return target
    const path = pathOfAbsoluteForm(target)
    if (path === undefined) return reject(`the request target ${quote(target)} is not a path (it must start with /)`)
    return normalizePath(path)
  }
  const n = target.length
  let query = n
  let normal = true
  for (let i = 0; i < n; i++) {
    const c = target.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) return reject(`${describeChar(c)} in the path ${quote(target)}: percent-encode it`)
    if (c === HASH) return reject(`a fragment (#) in the path ${quote(target)}: a client must not send it`)
    if (i >= query) continue
    if (c === QUESTION) query = i
    else if (c === PERCENT || c === BACKSLASH) normal = false
    else if (c === SLASH && normal) {
      const next = target.charCodeAt(i + 1)
      if (next === SLASH || (next === DOT && isDotSegment(target, i + 1))) normal = false
    }
  }
  return normal ? target : slowPath(target, query)
}

/** Whether `s` at `at` starts a `.` or `..` segment (ending at a slash, the query or the end). */
function isDotSegment(s: string, at: number): boolean {
  let end = at + 1
  if (s.charCodeAt(end) === DOT) end++
  return end === s.length || s.charCodeAt(end) === SLASH || s.charCodeAt(end) === QUESTION
}

function slowPath(target: string, query: number): string | PathRejection {
  const decoded = decode(target, query)
  if (typeof decoded !== 'string') return decoded
  return mergeSlashes(removeDotSegments(decoded)) + target.slice(query)
}

/** Step 1 and 2: the path part decoded as Istio's DECODE_AND_MERGE_SLASHES does, backslashes as slashes. */
function decode(target: string, end: number): string | PathRejection {
  let out = ''
  let from = 0
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i)
    if (c === BACKSLASH) {
      out += target.slice(from, i) + '/'
      from = i + 1
      continue
    }
    if (c !== PERCENT) continue
    const hi = hexValue(target.charCodeAt(i + 1))
    const lo = hexValue(target.charCodeAt(i + 2))
    if (i + 2 >= end || hi < 0 || lo < 0) {
      return reject(`an invalid percent-encoding ${quote(target.slice(i, Math.min(i + 3, end)))} in the path ${quote(target)}: % must be followed by two hex digits (a literal % is %25)`)
    }
    const byte = hi * 16 + lo
    if (byte === 0) return reject(`an encoded NUL (%00) in the path ${quote(target)}`)
    const decodedAs = byte === SLASH || byte === BACKSLASH ? '/' : isUnreserved(byte) ? String.fromCharCode(byte) : undefined
    if (decodedAs !== undefined) {
      out += target.slice(from, i) + decodedAs
      from = i + 3
    }
    i += 2
  }
  return out + target.slice(from, end)
}

/** RFC 3986 §5.2.4 on a path that starts with a slash: an empty segment is a segment, as there. */
function removeDotSegments(path: string): string {
  const segments = path.split('/')
  const out: string[] = []
  const last = segments.length - 1
  // segments[0] is the empty string before the leading slash.
  for (let k = 1; k <= last; k++) {
    const segment = segments[k]
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop()
      // `/a/b/..` is the directory `/a/`: the trailing slash stays.
      if (k === last) out.push('')
    } else out.push(segment)
  }
  return '/' + out.join('/')
}

function mergeSlashes(path: string): string {
  return path.includes('//') ? path.replace(/\/{2,}/g, '/') : path
}

/**
 * The path and query of an absolute-form target, as the client sent them (a URL parser
 * would already have removed dot segments, and differently); undefined when it is none.
 */
function pathOfAbsoluteForm(target: string): string | undefined {
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(target)
  if (!scheme) return undefined
  let i = scheme[0].length
  while (i < target.length && target[i] !== '/' && target[i] !== '?' && target[i] !== '#') i++
  const rest = target.slice(i)
  return rest === '' ? '/' : rest.charCodeAt(0) === SLASH ? rest : '/' + rest
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === DOT || byte === 0x5f || byte === 0x7e
  )
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

function describeChar(c: number): string {
  if (c === 0x20) return 'a space'
  if (c < 0x20 || c === 0x7f) return `a control character (0x${c.toString(16).padStart(2, '0')})`
  return 'a non-ASCII character'
}

// The reason goes out as a header too: a long or odd path is shown cut, in ASCII.
const SHOWN = 120
function quote(s: string): string {
  const shown = s.length > SHOWN ? `${s.slice(0, SHOWN)}...` : s
  return JSON.stringify(shown).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function reject(reason: string): PathRejection {
  return {reason}
}
