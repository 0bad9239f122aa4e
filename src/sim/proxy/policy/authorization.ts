// Who may call a service: Istio's AuthorizationPolicy (ALLOW and DENY rules, source,
// methods and paths), decided at the service's inbound side. Pure: the layer and the TCP
// listener ask it per request or connection.
import type {AuthorizationConfig, AuthorizationRule} from '../../config/types.js'

/** What a rule is matched against; a TCP connection has no method or path. */
export interface AuthorizationRequest {
  source: string
  method?: string
  path?: string
}

export type AuthorizationVerdict = {allowed: true} | {allowed: false; reason: string}

const ALLOWED: AuthorizationVerdict = {allowed: true}

/** Istio's order: any matching deny rule refuses; then, if there are allow rules, one must match. */
export function authorize(config: AuthorizationConfig, request: AuthorizationRequest): AuthorizationVerdict {
  const denied = config.deny?.findIndex((rule) => matches(rule, request)) ?? -1
  if (denied >= 0) return {allowed: false, reason: `deny rule ${denied + 1} (${describeRule(config.deny![denied])}) matches`}
  if (!config.allow || config.allow.some((rule) => matches(rule, request))) return ALLOWED
  return {allowed: false, reason: config.allow.length === 0 ? 'allow lists no rule, so nothing is allowed' : 'no allow rule matches'}
}

function matches(rule: AuthorizationRule, request: AuthorizationRequest): boolean {
  if (rule.from && !rule.from.includes(request.source)) return false
  // A TCP connection has no method or path: a rule that needs one does not match it (as Istio's L4 policy).
  if (rule.methods && (request.method === undefined || !rule.methods.includes(request.method))) return false
  if (rule.paths) {
    if (request.path === undefined) return false
    const path = withoutQuery(request.path)
    if (!rule.paths.some((p) => pathMatches(p, path))) return false
  }
  return true
}

/** Istio's forms: `*` any, `/api/*` prefix, `*.json` suffix, else exact. */
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern === '*') return true
  if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1))
  if (pattern.startsWith('*')) return path.endsWith(pattern.slice(1))
  return path === pattern
}

function withoutQuery(path: string): string {
  const q = path.indexOf('?')
  return q < 0 ? path : path.slice(0, q)
}

/** `from frontend, GET, /admin/*` — for the reason a denial gives. */
export function describeRule(rule: AuthorizationRule): string {
  const parts = [rule.from && `from ${rule.from.join('|')}`, rule.methods?.join('|'), rule.paths?.join('|')].filter(Boolean)
  return parts.length > 0 ? parts.join(', ') : 'every request'
}
