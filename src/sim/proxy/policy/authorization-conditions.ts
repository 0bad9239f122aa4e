// The `when` keys of Istio's AuthorizationPolicy this mesh can judge, and what each reads
// from a request. One grammar for both sides: `mesh validate` refuses a key parseConditionKey
// does not know, and authorize() reads only keys it parsed.
import type {HeaderMap} from '../headers.js'
import type {RequestAuth} from '../stack.js'
import {parseSpiffeId, principalOf} from '../../security/spiffe.js'

export type ConditionAttribute =
  | {kind: 'header'; name: string}
  | {kind: 'claim'; path: string[]}
  | {kind: 'source.principal' | 'source.namespace' | 'request.auth.principal' | 'request.auth.audiences' | 'request.auth.presenter'}

/** What a condition is judged against; a TCP connection has no headers and no token. */
export interface ConditionInput {
  peer: {principal?: string}
  auth?: RequestAuth
  headers?: HeaderMap
}

/** As `mesh validate` lists them. */
export const CONDITION_KEYS = [
  'request.headers[<name>]',
  'request.auth.claims[<claim>] (nested: [<claim>][<field>])',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'source.principal',
  'source.namespace',
] as const

const PLAIN = new Set(['source.principal', 'source.namespace', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter'])

/** Istio's keys that say nothing in a mesh on one machine: refused rather than ignored, so no rule is silently weaker. */
const NOT_HERE: Record<string, string> = {
  'source.ip': 'every caller of a local mesh is 127.0.0.1',
  'remote.ip': 'every caller of a local mesh is 127.0.0.1',
  'destination.ip': 'every instance listens on 127.0.0.1',
  'destination.port': 'instance ports are chosen by the OS',
  'connection.sni': 'the mesh does not route by SNI',
}

// Istio's HTTP header name (a token) and claim names (anything but brackets).
const HEADER = /^request\.headers\[([!#$%&'*+.^_`|~0-9A-Za-z-]+)\]$/
const CLAIMS = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/

const parsed = new Map<string, ConditionAttribute>()

/** The attribute a `when` key names, or why it names none (for `mesh validate`). */
export function parseConditionKey(key: string): ConditionAttribute | {error: string} {
  const known = parsed.get(key)
  if (known) return known
  const attribute = parseKey(key)
  if (!('error' in attribute)) parsed.set(key, attribute)
  return attribute
}

function parseKey(key: string): ConditionAttribute | {error: string} {
  if (PLAIN.has(key)) return {kind: key as 'source.principal'}
  const header = HEADER.exec(key)
  if (header) return {kind: 'header', name: header[1].toLowerCase()}
  const claims = CLAIMS.exec(key)
  if (claims) return {kind: 'claim', path: claims[1].slice(1, -1).split('][')}
  const why = NOT_HERE[key] ?? (key.startsWith('experimental.envoy.filters.') ? 'the mesh runs no Envoy filters' : undefined)
  if (why) return {error: `${key} is Istio's, but not judged here (${why}); the keys are ${CONDITION_KEYS.join(', ')}`}
  if (key.startsWith('request.headers') || key.startsWith('request.auth.claims')) {
    return {error: `"${key}" is not a key: write the name in brackets, as request.headers[x-user] or request.auth.claims[groups]`}
  }
  return {error: `"${key}" is not one of Istio's condition keys; the keys are ${CONDITION_KEYS.join(', ')}`}
}

/** Keys that need an HTTP request: on a TCP connection a condition on one does not hold (Istio's L4). */
export function needsRequest(attribute: ConditionAttribute): boolean {
  return attribute.kind !== 'source.principal' && attribute.kind !== 'source.namespace'
}

/**
 * The attribute's values in this request, or undefined when it has none (no such header, no
 * valid token, no mTLS principal). A list claim gives each element, as Istio matches any of them.
 */
export function attributeValues(attribute: ConditionAttribute, input: ConditionInput): readonly string[] | undefined {
  switch (attribute.kind) {
    case 'header': {
      const v = input.headers?.[attribute.name]
      return v === undefined ? undefined : typeof v === 'string' ? [v] : v
    }
    case 'source.principal':
      return input.peer.principal ? [principalOf(input.peer.principal)] : undefined
    case 'source.namespace': {
      const ns = input.peer.principal && parseSpiffeId(input.peer.principal)?.namespace
      return ns ? [ns] : undefined
    }
    case 'request.auth.principal':
      return validAuth(input)?.principal ? [input.auth!.principal!] : undefined
    case 'request.auth.audiences':
      return claimValues(validAuth(input)?.claims, ['aud'])
    case 'request.auth.presenter':
      return claimValues(validAuth(input)?.claims, ['azp'])
    case 'claim':
      return claimValues(validAuth(input)?.claims, attribute.path)
  }
}

function validAuth(input: ConditionInput): RequestAuth | undefined {
  return input.auth?.outcome === 'valid' ? input.auth : undefined
}

/** A string, number or boolean claim is one value; a list gives its scalar elements; an object none. */
function claimValues(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): readonly string[] | undefined {
  let v: unknown = claims
  for (const name of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined
    v = (v as Record<string, unknown>)[name]
  }
  if (Array.isArray(v)) {
    const scalars = v.filter(isScalar).map(String)
    return scalars.length > 0 ? scalars : undefined
  }
  return isScalar(v) ? [String(v)] : undefined
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}
