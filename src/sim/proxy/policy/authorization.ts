// Who may call a service: Istio's AuthorizationPolicy (ALLOW and DENY rules on the caller's
// identity and principal, the request's token, method, path and `when` conditions), decided
// at the service's inbound side. Pure: the layer and the TCP listener ask it per request or
// connection.
import type {AuthorizationCondition, AuthorizationConfig, AuthorizationRule} from '../../config/types.js'
import type {HeaderMap} from '../headers.js'
import type {RequestAuth} from '../stack.js'
import {principalOf} from '../../security/spiffe.js'
import {attributeValues, needsRequest, parseConditionKey, type ConditionAttribute} from './authorization-conditions.js'

/** What a rule is matched against; a TCP connection has no method, path, headers or token. */
export interface AuthorizationRequest {
  /** `identity`: the service name `from` names; `principal`: the SPIFFE ID `principals` names. */
  peer: {identity: string; principal?: string}
  auth?: RequestAuth
  method?: string
  path?: string
  headers?: HeaderMap
}

/** `rule`: which rule decided (`allow rule 2 (…)`), for `mesh trace --why`; none when no rule had to. */
export type AuthorizationVerdict = {allowed: true; rule?: string} | {allowed: false; reason: string}

const ALLOWED: AuthorizationVerdict = {allowed: true}
/** Most requests are allowed by one of a few rules: one verdict per rule, none made per request. */
const allowedBy = new WeakMap<AuthorizationRule, AuthorizationVerdict>()

/** Istio's order: any matching deny rule refuses; then, if there are allow rules, one must match. */
export function authorize(config: AuthorizationConfig, request: AuthorizationRequest): AuthorizationVerdict {
  const denied = config.deny?.findIndex((rule) => mismatch(rule, request) === undefined) ?? -1
  if (denied >= 0) return {allowed: false, reason: `deny rule ${denied + 1} (${describeRule(config.deny![denied])}) matches${denyDetail(config.deny![denied], request)}`}
  if (!config.allow) return ALLOWED
  for (let i = 0; i < config.allow.length; i++) {
    const rule = config.allow[i]
    if (mismatch(rule, request) !== undefined) continue
    let verdict = allowedBy.get(rule)
    if (!verdict) allowedBy.set(rule, (verdict = {allowed: true, rule: `allow rule ${i + 1} (${describeRule(rule)})`}))
    return verdict
  }
  if (config.allow.length === 0) return {allowed: false, reason: 'allow lists no rule, so nothing is allowed'}
  return {allowed: false, reason: `no allow rule matches: ${explainMisses(config.allow, request)}`}
}

/** A rule's field that does not hold for the request (a `when` condition by its index), or undefined when the rule matches. */
type Field = Exclude<keyof AuthorizationRule, 'when'> | number

function mismatch(rule: AuthorizationRule, r: AuthorizationRequest): Field | undefined {
  if (rule.from && !rule.from.includes(r.peer.identity)) return 'from'
  if (rule.principals && !(r.peer.principal && anyPrincipal(rule.principals, r.peer.principal))) return 'principals'
  if (rule.notPrincipals && r.peer.principal && anyPrincipal(rule.notPrincipals, r.peer.principal)) return 'notPrincipals'
  const requestPrincipal = r.auth?.outcome === 'valid' ? r.auth.principal : undefined
  // A TCP connection has no method, path or token: a rule that asks about one does not match it (as Istio's L4 policy).
  const http = r.method !== undefined
  if (rule.requestPrincipals && !(http && requestPrincipal && rule.requestPrincipals.some((p) => valueMatches(p, requestPrincipal)))) return 'requestPrincipals'
  if (rule.notRequestPrincipals && (!http || (requestPrincipal && rule.notRequestPrincipals.some((p) => valueMatches(p, requestPrincipal))))) return 'notRequestPrincipals'
  if (rule.methods && !(http && rule.methods.includes(r.method!))) return 'methods'
  if (rule.notMethods && (!http || rule.notMethods.includes(r.method!))) return 'notMethods'
  if (rule.paths && !(r.path !== undefined && anyPath(rule.paths, r.path))) return 'paths'
  if (rule.notPaths && (r.path === undefined || anyPath(rule.notPaths, r.path))) return 'notPaths'
  if (rule.when) {
    for (let i = 0; i < rule.when.length; i++) if (!holds(rule.when[i], r)) return i
  }
  return undefined
}

function holds(condition: AuthorizationCondition, r: AuthorizationRequest): boolean {
  const attribute = attributeOf(condition)
  if (!attribute || (needsRequest(attribute) && r.method === undefined)) return false
  const values = attributeValues(attribute, r)
  if (condition.values && !values?.some((v) => condition.values!.some((p) => valueMatches(p, v)))) return false
  if (condition.notValues && values?.some((v) => condition.notValues!.some((p) => valueMatches(p, v)))) return false
  return true
}

/** Each condition's key parsed once (null: it does not parse), not per request. */
const attributes = new WeakMap<AuthorizationCondition, ConditionAttribute | null>()

/** A key `mesh validate` let through always parses; one that does not (a policy made in code) never holds. */
function attributeOf(condition: AuthorizationCondition): ConditionAttribute | undefined {
  let a = attributes.get(condition)
  if (a === undefined) {
    const parsed = parseConditionKey(condition.key)
    attributes.set(condition, (a = 'error' in parsed ? null : parsed))
  }
  return a ?? undefined
}

/** Each principals list without `spiffe://`, made once per list rather than per request. */
const bareLists = new WeakMap<readonly string[], readonly string[]>()

/** Istio's principals are written with or without `spiffe://`: both sides are compared without it. */
function anyPrincipal(patterns: readonly string[], principal: string): boolean {
  let bare = bareLists.get(patterns)
  if (!bare) bareLists.set(patterns, (bare = patterns.map(principalOf)))
  const p = principalOf(principal)
  return bare.some((pattern) => valueMatches(pattern, p))
}

function anyPath(patterns: readonly string[], path: string): boolean {
  const p = withoutQuery(path)
  return patterns.some((pattern) => valueMatches(pattern, p))
}

/** Istio's string forms: `*` present (anything), `abc*` prefix, `*abc` suffix, else exact. Paths use them too. */
export function valueMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return true
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1))
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1))
  return value === pattern
}

function withoutQuery(path: string): string {
  const q = path.indexOf('?')
  return q < 0 ? path : path.slice(0, q)
}

/** `from frontend, methods GET, paths /admin/*` — for the reason a refusal gives and `mesh trace --why`. */
export function describeRule(rule: AuthorizationRule): string {
  const parts: string[] = []
  for (const field of LIST_FIELDS) {
    const values = rule[field]
    if (values) parts.push(`${field} ${values.join('|')}`)
  }
  for (const c of rule.when ?? []) parts.push(`when ${describeCondition(c)}`)
  return parts.length > 0 ? parts.join(', ') : 'every request'
}

const LIST_FIELDS = ['from', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'methods', 'notMethods', 'paths', 'notPaths'] as const

function describeCondition(c: AuthorizationCondition): string {
  const parts = [c.values && `${c.key} in ${c.values.join('|')}`, c.notValues && `${c.key} not in ${c.notValues.join('|')}`]
  return parts.filter(Boolean).join(' and ')
}

/** At most this many rules are explained in a refusal: the reason travels in a header. */
const EXPLAINED = 4

/** `rule 1 wants from front (the caller is batch); rule 2 …` */
function explainMisses(rules: readonly AuthorizationRule[], r: AuthorizationRequest): string {
  const out = rules.slice(0, EXPLAINED).map((rule, i) => `rule ${i + 1} ${explainMiss(rule, mismatch(rule, r)!, r)}`)
  if (rules.length > EXPLAINED) out.push(`and ${rules.length - EXPLAINED} more`)
  return out.join('; ')
}

function explainMiss(rule: AuthorizationRule, field: Field, r: AuthorizationRequest): string {
  const principal = r.peer.principal ? `the caller is ${principalOf(r.peer.principal)}` : 'the caller has no principal'
  const token = r.auth?.outcome === 'valid' ? `the token's is ${r.auth.principal ?? '(none)'}` : 'the request has no valid token'
  const tcp = 'a TCP connection has none'
  switch (field) {
    case 'from':
      return `wants from ${rule.from!.join('|')} (the caller is ${r.peer.identity})`
    case 'principals':
      return `wants principals ${rule.principals!.join('|')} (${principal})`
    case 'notPrincipals':
      return `refuses notPrincipals ${rule.notPrincipals!.join('|')} (${principal})`
    case 'requestPrincipals':
      return `wants requestPrincipals ${rule.requestPrincipals!.join('|')} (${r.method === undefined ? tcp : token})`
    case 'notRequestPrincipals':
      return `refuses notRequestPrincipals ${rule.notRequestPrincipals!.join('|')} (${r.method === undefined ? tcp : token})`
    case 'methods':
      return `wants methods ${rule.methods!.join('|')} (${r.method === undefined ? tcp : `the method is ${r.method}`})`
    case 'notMethods':
      return `refuses notMethods ${rule.notMethods!.join('|')} (${r.method === undefined ? tcp : `the method is ${r.method}`})`
    case 'paths':
      return `wants paths ${rule.paths!.join('|')} (${r.path === undefined ? tcp : `the path is ${bounded(withoutQuery(r.path))}`})`
    case 'notPaths':
      return `refuses notPaths ${rule.notPaths!.join('|')} (${r.path === undefined ? tcp : `the path is ${bounded(withoutQuery(r.path))}`})`
    default: {
      const c = rule.when![field as number]
      return `wants ${describeCondition(c)} (${describeAttribute(c, r)})`
    }
  }
}

/** What the caller sent goes into a reason only in part: it travels in a header. */
function bounded(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text
}

function describeAttribute(c: AuthorizationCondition, r: AuthorizationRequest): string {
  const attribute = attributeOf(c)
  if (!attribute) return `${c.key} is not a key this mesh knows`
  if (needsRequest(attribute) && r.method === undefined) return 'a TCP connection has none'
  const values = attributeValues(attribute, r)
  if (!values) return 'it is absent'
  const shown = values.slice(0, 3).map((v) => JSON.stringify(bounded(v)))
  return `it is ${shown.join(', ')}${values.length > 3 ? ` and ${values.length - 3} more` : ''}`
}

/** What made a deny rule that needs no particular value match: `(no valid token)` for notRequestPrincipals: ["*"]. */
function denyDetail(rule: AuthorizationRule, r: AuthorizationRequest): string {
  if (rule.notRequestPrincipals && !(r.auth?.outcome === 'valid')) return ': the request has no valid token'
  if (rule.notPrincipals && !r.peer.principal) return ': the caller has no principal'
  return ''
}
