// Istio's AuthorizationPolicy and RequestAuthentication as a service's `policy.authorization`
// and `policy.requestAuthentication`, which mesh.yaml decides as Istio does (docs/security.md).
// Istio's rule ORs its sources and its operations; a mesh.yaml rule has one of each, so a rule
// becomes one per (source, operation) pair. All the policies of one workload are joined, as
// Istio joins them: any deny refuses, then any allow admits.

import type {At} from '../config/checker.js'
import {INGRESS_GATEWAY_PRINCIPAL} from '../export/istio-security.js'
import {parseSpiffeId, principalOf} from '../security/spiffe.js'
import type {PolicyEdit} from './istio-to-policy.js'
import type {Loss} from './loss.js'

type LossAt = (at: At, kind: Loss['kind'], reason: string) => void
type Rule = Record<string, unknown>

const SOURCE_KEYS = ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals']
const OPERATION_KEYS = ['methods', 'notMethods', 'paths', 'notPaths']
const JWT_RULE_KEYS = ['issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'forwardOriginalToken', 'outputPayloadToHeader', 'outputClaimToHeaders']

/**
 * The services a workload selector picks: its `app` label, or every declared service when
 * there is none (a policy for the whole namespace applies to each of its workloads).
 */
export function selected(spec: At, declared: readonly string[], known: (at: At, host: unknown) => string | undefined, loss: LossAt): string[] {
  const selector = spec.child('selector') ?? spec.child('targetRef') ?? spec.child('targetRefs')
  if (!selector) {
    loss(spec, 'changed', `no selector: it applies to every workload, so to each service of mesh.yaml (${declared.join(', ')})`)
    return [...declared]
  }
  const app = spec.child('selector')?.child('matchLabels')?.child('app')
  if (!app) {
    loss(selector, 'dropped', 'a selector other than matchLabels.app: the services it picks are not guessed')
    return []
  }
  const service = known(app, app.value)
  return service ? [service] : []
}

export class SecurityImport {
  private readonly allow = new Map<string, {rules: Rule[]; from: At}>()
  private readonly deny = new Map<string, {rules: Rule[]; from: At}>()
  private readonly jwt = new Map<string, {rules: Rule[]; from: At}>()

  constructor(
    private readonly declared: readonly string[],
    private readonly known: (at: At, host: unknown) => string | undefined,
    private readonly loss: LossAt,
    /** Whose principals are this mesh's own services: mesh.yaml's trust domain, and its name as the namespace. */
    private readonly identity: {trustDomain: string; namespace: string},
  ) {}

  authorizationPolicy(spec: At): void {
    const action = spec.child('action')?.value ?? 'ALLOW'
    if (action !== 'ALLOW' && action !== 'DENY') {
      this.loss(spec.child('action')!, 'dropped', `action ${String(action)}: the mesh decides ALLOW and DENY itself, with no external authorizer or audit log`)
      return
    }
    for (const {key, at} of spec.entries()) if (!['action', 'rules', 'selector'].includes(key)) this.loss(at, 'dropped', `${key}: no counterpart in policy.authorization`)
    const services = selected(spec, this.declared, this.known, this.loss)
    const rulesAt = spec.child('rules')
    let rules: Rule[]
    let into = action === 'ALLOW' ? this.allow : this.deny
    if (!rulesAt || rulesAt.items().length === 0) {
      if (action === 'DENY') return
      // Istio's allow-nothing: no ALLOW rule can match. mesh.yaml's empty allow admits all, so it is a deny of everything.
      this.loss(rulesAt ?? spec, 'changed', `ALLOW with no rules (Istio's allow-nothing) is written as deny: [{}], which refuses every request as it does`)
      rules = [{}]
      into = this.deny
    } else rules = rulesAt.items().flatMap((rule) => this.rule(rule))
    for (const service of services) {
      const entry = into.get(service) ?? {rules: [], from: rulesAt ?? spec}
      entry.rules.push(...rules)
      into.set(service, entry)
    }
  }

  requestAuthentication(spec: At): void {
    for (const {key, at} of spec.entries()) if (!['jwtRules', 'selector'].includes(key)) this.loss(at, 'dropped', `${key}: no counterpart in policy.requestAuthentication`)
    const rulesAt = spec.child('jwtRules')
    const rules: Rule[] = []
    for (const rule of rulesAt?.items() ?? []) {
      const out: Rule = {}
      for (const {key, at} of rule.entries()) {
        if (JWT_RULE_KEYS.includes(key)) out[key] = at.node && typeof (at.node as {toJSON?: unknown}).toJSON === 'function' ? (at.node as {toJSON(): unknown}).toJSON() : at.value
        else this.loss(at, 'dropped', `jwtRules.${key}: the mesh's jwtRules take ${JWT_RULE_KEYS.join(', ')}`)
      }
      if (typeof out.issuer === 'string') rules.push(out)
      else this.loss(rule, 'dropped', 'a jwtRule without an issuer')
    }
    if (rules.length === 0) return
    for (const service of selected(spec, this.declared, this.known, this.loss)) {
      const entry = this.jwt.get(service) ?? {rules: [], from: rulesAt!}
      entry.rules.push(...rules)
      this.jwt.set(service, entry)
    }
  }

  /** One Istio rule → a mesh.yaml rule per (source, operation) pair, `when` on each. */
  private rule(rule: At): Rule[] {
    for (const {key, at} of rule.entries()) if (!['from', 'to', 'when'].includes(key)) this.loss(at, 'dropped', `${key}: no counterpart in an authorization rule`)
    const sources = callersJoined((rule.child('from')?.items() ?? []).map((f) => this.fields(f.child('source'), SOURCE_KEYS, 'source')))
    const operations = (rule.child('to')?.items() ?? []).map((t) => this.fields(t.child('operation'), OPERATION_KEYS, 'operation'))
    const when = rule.child('when')?.items().map((w) => (w.node as {toJSON(): unknown}).toJSON()) ?? []
    const out: Rule[] = []
    for (const source of sources.length > 0 ? sources : [{}]) {
      for (const operation of operations.length > 0 ? operations : [{}]) {
        const combined: Rule = {...source, ...operation}
        const conditions = [...((combined.when as unknown[]) ?? []), ...when]
        delete combined.when
        out.push(conditions.length > 0 ? {...combined, when: conditions} : combined)
      }
    }
    return out
  }

  /** A source's or operation's fields mesh.yaml has; namespaces become a source.namespace condition. */
  private fields(at: At | undefined, keys: readonly string[], what: string): Rule {
    const out: Rule = {}
    for (const {key, at: field} of at?.entries() ?? []) {
      const values = (field.node as {toJSON?: () => unknown})?.toJSON?.()
      if (key === 'principals' && Array.isArray(values) && this.services(values)) out.from = this.services(values)
      // Any identity but none: a call without one, which mesh.yaml names `unknown`.
      else if (what === 'source' && key === 'notPrincipals' && JSON.stringify(values) === '["*"]' && !at!.child('principals')) out.from = ['unknown']
      else if (keys.includes(key)) out[key] = values
      else if (what === 'source' && (key === 'namespaces' || key === 'notNamespaces')) {
        out.when = [{key: 'source.namespace', [key === 'namespaces' ? 'values' : 'notValues']: values}]
      } else this.loss(field, 'dropped', `${what}.${key}: ${key.toLowerCase().includes('ip') ? 'every caller of a local mesh is 127.0.0.1' : `an authorization rule matches ${keys.join(', ')}`}`)
    }
    return out
  }

  /** Principals that are each a service of this mesh (or its ingress, or Istio's ingress gateway), as `from:` names them; undefined if any is not. */
  private services(principals: unknown[]): string[] | undefined {
    const names = principals.map((p) => {
      if (typeof p === 'string' && principalOf(p) === INGRESS_GATEWAY_PRINCIPAL) return 'ingress'
      const parts = typeof p === 'string' ? parseSpiffeId(`spiffe://${principalOf(p)}`) : undefined
      const mine = parts && parts.trustDomain === this.identity.trustDomain && parts.namespace === this.identity.namespace
      return mine && (this.declared.includes(parts.serviceAccount) || parts.serviceAccount === 'ingress') ? parts.serviceAccount : undefined
    })
    return names.every((n) => n !== undefined) ? (names as string[]) : undefined
  }

  edits(): PolicyEdit[] {
    const out: PolicyEdit[] = []
    const services = [...new Set([...this.allow.keys(), ...this.deny.keys()])]
    for (const service of services) {
      const allow = this.allow.get(service)
      const deny = this.deny.get(service)
      out.push({path: ['services', service, 'policy', 'authorization'], value: {...(allow ? {allow: allow.rules} : {}), ...(deny ? {deny: deny.rules} : {})}, from: (allow ?? deny)!.from})
    }
    for (const [service, {rules, from}] of this.jwt) out.push({path: ['services', service, 'policy', 'requestAuthentication'], value: {jwtRules: rules}, from})
    return out
  }
}

/**
 * Sources that differ only in their callers are one mesh.yaml rule with all of them in `from:`
 * (a rule's sources are alternatives, as `from:`'s names are): how export writes
 * `from: [web, unknown]`, as a source with principals and one with notPrincipals.
 */
function callersJoined(sources: Rule[]): Rule[] {
  const rest = (r: Rule) => JSON.stringify(Object.entries(r).filter(([k]) => k !== 'from').sort(([a], [b]) => a.localeCompare(b)))
  const out: Rule[] = []
  for (const source of sources) {
    const same = Array.isArray(source.from) ? out.find((o) => Array.isArray(o.from) && rest(o) === rest(source)) : undefined
    if (same) same.from = [...new Set([...(same.from as string[]), ...(source.from as string[])])]
    else out.push({...source})
  }
  return out
}
