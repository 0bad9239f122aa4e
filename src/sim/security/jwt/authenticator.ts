// One place's jwtRules (a service's, or the ingress's) as Envoy's jwt_authn filter applies an
// Istio RequestAuthentication:
//
//   request ──find the token (each rule's locations)──▶ none: passes, outcome `none`
//                                                     └▶ token ──its iss picks the rule──▶ keys ──jose──▶ valid | 401 reason
//
// A token that is present must be valid: signature, `exp`/`nbf` (60 s of clock skew, as
// Envoy), issuer, audience. A request with no token is not refused here — only an
// authorization rule that requires a principal refuses it (Istio's behaviour).
import {decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type LocalJWKSet} from 'jose'
import type {JwtRule} from '../../config/types.js'
import {firstHeader, type HeaderMap} from '../../proxy/headers.js'
import {LruMap} from '../../lru-map.js'
import {JWT_ALGORITHMS} from './jwks.js'
import type {KeySource} from './key-source.js'

/** Envoy's default clock_skew_seconds. */
export const CLOCK_SKEW_SECONDS = 60
/**
 * A longer token is refused before it is decoded. HTTP/1.1 requests cannot carry one anyway
 * (Node refuses more than 16 KiB of headers: 431); over HTTP/2 one could.
 */
export const MAX_TOKEN_BYTES = 16 * 1024
/** Where Istio looks when a rule names no location. */
const DEFAULT_HEADER = {name: 'authorization', prefix: 'Bearer '}
const DEFAULT_PARAM = 'access_token'
/**
 * Tokens verified, kept as Envoy's jwt_authn keeps them (its jwt_cache_config, 100 by
 * default): a client sends the same token on every request, and a signature check costs
 * far more than the request it rides on.
 */
export const VERIFIED_TOKENS = 100

export interface CompiledRule {
  rule: JwtRule
  /** The `iss` a token must carry (the dev issuer's for `issuer: mesh`). */
  iss: string
  keys: KeySource
}

/** Where one token was found. */
type Location = {header: string; prefix: string} | {param: string}

interface Found {
  token: string
  location: Location
}

export type Authentication =
  | {outcome: 'none'}
  | {outcome: 'valid'; principal: string; claims: JWTPayload; rule: CompiledRule; found: Found}
  | {outcome: 'invalid'; reason: string}

/** A token that passed: valid with the key set it was checked against, while its exp/nbf allow. */
interface Verified {
  payload: JWTPayload
  compiled: CompiledRule
  keys: LocalJWKSet
}

export class Authenticator {
  /** Every location any rule reads, in rule order, each once. */
  private readonly locations: Location[] = []
  /** Each rule's locations and the rule of each issuer, worked out once rather than per token. */
  private readonly locationsByRule = new Map<CompiledRule, Location[]>()
  private readonly ruleByIssuer = new Map<string, CompiledRule>()
  private readonly verified = new LruMap<string, Verified>(VERIFIED_TOKENS)
  /** Headers the rules write: one sent from outside never reaches the app. */
  readonly outputHeaders: string[]

  constructor(readonly rules: readonly CompiledRule[]) {
    const seen = new Set<string>()
    for (const r of rules) {
      this.locationsByRule.set(r, locationsOf(r.rule))
      if (!this.ruleByIssuer.has(r.iss)) this.ruleByIssuer.set(r.iss, r)
      for (const l of this.locationsByRule.get(r)!) {
        const key = 'param' in l ? `?${l.param}` : `${l.header}\u0000${l.prefix}`
        if (seen.has(key)) continue
        seen.add(key)
        this.locations.push(l)
      }
    }
    this.outputHeaders = [
      ...new Set(rules.flatMap((r) => [...(r.rule.outputPayloadToHeader ? [r.rule.outputPayloadToHeader] : []), ...(r.rule.outputClaimToHeaders ?? []).map((o) => o.header)]).map((h) => h.toLowerCase())),
    ]
  }

  /** The first token in any rule's locations (synchronous: a request with none goes on at once). */
  find(headers: HeaderMap, path: string): Found | undefined {
    for (const location of this.locations) {
      if ('param' in location) {
        const q = path.indexOf('?')
        // No URLSearchParams for a query that cannot hold the name (one spelt with %-escapes might).
        if (q === -1 || (!path.includes(location.param, q) && !path.includes('%', q))) continue
        const token = new URLSearchParams(path.slice(q + 1)).get(location.param)
        if (token) return {token, location}
        continue
      }
      const value = firstHeader(headers, location.header)
      if (value === undefined) continue
      if (location.prefix === '') {
        if (value.trim()) return {token: value.trim(), location}
        continue
      }
      // A scheme is case-insensitive (RFC 7235); `Authorization: Basic …` is no bearer token.
      if (value.length > location.prefix.length && value.slice(0, location.prefix.length).toLowerCase() === location.prefix.toLowerCase()) {
        return {token: value.slice(location.prefix.length).trim(), location}
      }
    }
    return undefined
  }

  /** The token's verdict. `nowMs`: wall-clock time for exp and nbf. */
  async verify(found: Found, nowMs: number): Promise<Authentication> {
    const {token} = found
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return invalid(`Jwt is too large: ${Buffer.byteLength(token)} bytes, more than the ${MAX_TOKEN_BYTES} the mesh takes`)
    const hit = this.verified.get(token)
    if (hit && this.readsAt(hit.compiled, found.location) && timely(hit.payload, nowMs) && (await hit.compiled.keys.current()) === hit.keys) {
      return valid(hit.payload, hit.compiled, found)
    }
    if (token.split('.').length !== 3) return invalid('Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections')
    let alg: unknown
    let iss: unknown
    try {
      alg = decodeProtectedHeader(token).alg
      iss = decodeJwt(token).iss
    } catch (error) {
      return invalid(`Jwt header or payload is not base64url-encoded JSON (${(error as Error).message})`)
    }
    if (typeof alg !== 'string' || !(JWT_ALGORITHMS as readonly string[]).includes(alg)) {
      return invalid(`Jwt header [alg] ${JSON.stringify(alg ?? null)} is not supported (one of ${JWT_ALGORITHMS.join(', ')})`)
    }
    if (typeof iss !== 'string') return invalid('Jwt issuer is not configured: the token has no iss claim')
    const compiled = this.ruleByIssuer.get(iss)
    // A rule reads its own locations only: a token found elsewhere is not its token.
    if (!compiled || !this.readsAt(compiled, found.location)) {
      return invalid(`Jwt issuer is not configured: ${JSON.stringify(iss)} is not the issuer of any jwtRule here (${this.rules.map((r) => r.iss).join(', ')})`)
    }
    const keys = await compiled.keys.current()
    if (!keys) return invalid(`Jwks remote fetch is failed: ${compiled.keys.error ?? 'no keys yet'}`)
    const verdict = await this.check(token, compiled, keys, nowMs)
    if (verdict !== 'unknown-kid') return verdict.ok ? this.remember(token, verdict.payload, compiled, keys, found) : invalid(verdict.reason)
    // A key the set does not have: a rotation the mesh has not seen yet, maybe.
    const fresh = await compiled.keys.refetch()
    const retried = fresh ? await this.check(token, compiled, fresh, nowMs) : 'unknown-kid'
    if (retried === 'unknown-kid') {
      const why = compiled.keys.error ? `; ${compiled.keys.error}` : ''
      return invalid(`Jwks doesn't have key to match kid or alg from Jwt${why}`)
    }
    return retried.ok ? this.remember(token, retried.payload, compiled, fresh!, found) : invalid(retried.reason)
  }

  private readsAt(compiled: CompiledRule, location: Location): boolean {
    return this.locationsByRule.get(compiled)!.some((l) => sameLocation(l, location))
  }

  /** A refetched key set is a new object: tokens checked against the old one are checked again. */
  private remember(token: string, payload: JWTPayload, compiled: CompiledRule, keys: LocalJWKSet, found: Found): Authentication {
    this.verified.set(token, {payload, compiled, keys})
    return valid(payload, compiled, found)
  }

  private async check(token: string, compiled: CompiledRule, keys: LocalJWKSet, nowMs: number): Promise<{ok: true; payload: JWTPayload} | {ok: false; reason: string} | 'unknown-kid'> {
    try {
      const {payload} = await jwtVerify(token, keys, {
        algorithms: [...JWT_ALGORITHMS],
        issuer: compiled.iss,
        audience: compiled.rule.audiences,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(nowMs),
      })
      return {ok: true, payload}
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) return 'unknown-kid'
      return {ok: false, reason: reasonOf(error, compiled)}
    }
  }
}

/** Envoy's words for each failure (so a search for them finds Istio's docs), with what was wrong. */
function reasonOf(error: unknown, compiled: CompiledRule): string {
  if (error instanceof errors.JWTExpired) return `Jwt is expired (exp ${new Date((error.payload.exp ?? 0) * 1000).toISOString()})`
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return `Jwt not yet valid (nbf ${new Date(Number(error.payload.nbf) * 1000).toISOString()})`
    if (error.claim === 'aud') return `Audiences in Jwt are not allowed (aud ${JSON.stringify(error.payload.aud ?? null)}; allowed: ${compiled.rule.audiences?.join(', ')})`
    return `Jwt verification fails: claim ${error.claim}: ${error.message}`
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'Jwt verification fails: the signature does not match the issuer\'s key'
  return `Jwt verification fails: ${(error as Error).message}`
}

/**
 * Whether exp and nbf still allow a token jose accepted earlier, with the same skew as jose's
 * clockTolerance; when not, the token is checked afresh so the refusal says why.
 */
function timely(payload: JWTPayload, nowMs: number): boolean {
  const now = Math.floor(nowMs / 1000)
  if (typeof payload.exp === 'number' && payload.exp <= now - CLOCK_SKEW_SECONDS) return false
  if (typeof payload.nbf === 'number' && payload.nbf > now + CLOCK_SKEW_SECONDS) return false
  return true
}

function invalid(reason: string): Authentication {
  return {outcome: 'invalid', reason}
}

function valid(claims: JWTPayload, rule: CompiledRule, found: Found): Authentication {
  // Istio's request principal: iss/sub.
  return {outcome: 'valid', principal: `${claims.iss}/${claims.sub ?? ''}`, claims, rule, found}
}

function locationsOf(rule: JwtRule): Location[] {
  if (!rule.fromHeaders?.length && !rule.fromParams?.length) return [{header: DEFAULT_HEADER.name, prefix: DEFAULT_HEADER.prefix}, {param: DEFAULT_PARAM}]
  return [...(rule.fromHeaders ?? []).map((h) => ({header: h.name.toLowerCase(), prefix: h.prefix ?? ''})), ...(rule.fromParams ?? []).map((param) => ({param}))]
}

function sameLocation(a: Location, b: Location): boolean {
  if ('param' in a || 'param' in b) return 'param' in a && 'param' in b && a.param === b.param
  return a.header === b.header && a.prefix === b.prefix
}

/**
 * What a valid token does to the request as Envoy forwards it: the token removed unless
 * `forwardOriginalToken`, the payload and claims written to the rule's headers. Returns the
 * new path (a token in the query is removed from it).
 */
export function forwardVerified(auth: Extract<Authentication, {outcome: 'valid'}>, headers: HeaderMap, path: string): string {
  const {rule} = auth.rule
  const {location, token} = auth.found
  if (rule.outputPayloadToHeader) headers[rule.outputPayloadToHeader.toLowerCase()] = token.split('.')[1]
  for (const {header, claim} of rule.outputClaimToHeaders ?? []) {
    const value = headerValueOf(claimAt(auth.claims, claim))
    if (value !== undefined) headers[header.toLowerCase()] = value
  }
  if (rule.forwardOriginalToken) return path
  if (!('param' in location)) {
    delete headers[location.header]
    return path
  }
  // The other parameters stay as they were written (URLSearchParams would re-encode them).
  const q = path.indexOf('?')
  const rest = path
    .slice(q + 1)
    .split('&')
    .filter((pair) => new URLSearchParams(pair).has(location.param) === false)
  return path.slice(0, q) + (rest.length ? `?${rest.join('&')}` : '')
}

/** `a.b` reads a nested claim, as Istio's claim paths do. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (path in claims) return claims[path]
  let at: unknown = claims
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null) return undefined
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/** Strings, numbers and booleans as text, a list of them joined by commas (as Envoy's claim_to_headers); anything else is not written. */
function headerValueOf(value: unknown): string | undefined {
  const scalar = (v: unknown) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined)
  const items = Array.isArray(value) ? value.map(scalar) : undefined
  const text = items ? (items.every((i) => i !== undefined) ? items.join(',') : undefined) : scalar(value)
  // A header value is Latin-1 text on one line.
  return text === undefined || /[^\x20-\x7e\t]/.test(text) ? undefined : text
}
