// meshsim's security as Istio's own objects: `authorization` as AuthorizationPolicies (a DENY
// and an ALLOW one, evaluated as meshsim does: any deny refuses, then an allow must match when
// there are allow rules), `mtls` as PeerAuthentications, `requestAuthentication` as
// RequestAuthentications (the ingress's on the ingress gateway). meshsim names identities as
// Istio does (spiffe.ts: the mesh's name plays the namespace, each service its own service
// account), so principals carry over, moved to the export's namespace.
import {readFileSync} from 'node:fs'
import {AuthorizationPolicy, type IAuthorizationPolicy} from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy'
import {PeerAuthentication} from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication'
import {type IRequestAuthentication, RequestAuthentication} from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication'
import {DEFAULT_CERT_TTL_MS} from '../config/security-schema.js'
import type {AuthorizationRule, JwtRule, RequestAuthenticationConfig, ServiceConfig} from '../config/types.js'
import {DEV_ISSUER} from '../security/jwt/dev-issuer.js'
import {DEFAULT_TRUST_DOMAIN, principalOf} from '../security/spiffe.js'
import {type ExportContext, type Manifest, meshLabels, serviceHost} from './manifest.js'

type Rule = NonNullable<NonNullable<IAuthorizationPolicy['spec']>['rules']>[number]
type Source = NonNullable<NonNullable<Rule['from']>[number]['source']>
type IstioJwtRule = NonNullable<NonNullable<IRequestAuthentication['spec']>['jwtRules']>[number]

/** The identity of Istio's default ingress gateway, which `from: [ingress]` names (and import reads back as it). */
export const INGRESS_GATEWAY_PRINCIPAL = 'cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account'

export function istioSecurityObjects(ctx: ExportContext): Manifest[] {
  const out: Manifest[] = []
  const security = ctx.config.security
  if (security) {
    out.push({file: '00-namespace', object: new PeerAuthentication({metadata: {name: 'default', namespace: ctx.namespace, labels: meshLabels(ctx)}, spec: {mtls: {mode: security.mtls}}})})
    if (security.trustDomain !== DEFAULT_TRUST_DOMAIN) {
      ctx.losses.add('security.trustDomain', "the trust domain is the Istio installation's (meshConfig.trustDomain), not an app's", `none; install Istio with meshConfig.trustDomain: ${security.trustDomain}`)
    }
    if (security.certTtlMs !== DEFAULT_CERT_TTL_MS) {
      ctx.losses.add('security.certTTL', "workload certificates' lifetime is set by istiod (DEFAULT_WORKLOAD_CERT_TTL, 24h by default), not per app", 'none; set it in the Istio installation')
    }
  }
  for (const s of ctx.config.services) {
    const meta = (name: string) => ({name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}})
    const selector = {matchLabels: {app: s.name}}
    const p = s.policy
    if (p.authorization?.deny?.length) {
      out.push({file: s.name, object: new AuthorizationPolicy({metadata: meta(`${s.name}-deny`), spec: {selector, action: 'DENY', rules: p.authorization.deny.map((r, i) => ruleOf(r, `services.${s.name}.policy.authorization.deny.${i}`, ctx))}})})
    }
    // An ALLOW policy with no rules refuses everything in Istio; meshsim's `allow: []` has no rules to require.
    if (p.authorization?.allow?.length) {
      out.push({file: s.name, object: new AuthorizationPolicy({metadata: meta(`${s.name}-allow`), spec: {selector, action: 'ALLOW', rules: p.authorization.allow.map((r, i) => ruleOf(r, `services.${s.name}.policy.authorization.allow.${i}`, ctx))}})})
    }
    if (!p.requestAuthentication && ctx.config.ingress?.requestAuthentication && readsToken(p.authorization)) {
      ctx.losses.add(
        `services.${s.name}.policy.authorization`,
        `its rules read the token the ingress verified; in Istio a sidecar knows a token only from a RequestAuthentication of its own (and the gateway removes the token unless forwardOriginalToken)`,
        `none written; give ${s.name} the ingress's jwtRules as its own requestAuthentication, and the ingress's forwardOriginalToken: true`,
      )
    }
    if (p.mtls) out.push({file: s.name, object: new PeerAuthentication({metadata: meta(s.name), spec: {selector, mtls: {mode: p.mtls}}})})
    if (p.requestAuthentication) {
      const jwtRules = jwtRulesOf(p.requestAuthentication, `services.${s.name}.policy.requestAuthentication`, ctx)
      if (jwtRules.length > 0) out.push({file: s.name, object: new RequestAuthentication({metadata: meta(s.name), spec: {selector, jwtRules}})})
    }
  }
  const ingressAuth = ctx.config.ingress?.requestAuthentication
  if (ingressAuth) {
    const jwtRules = jwtRulesOf(ingressAuth, 'ingress.requestAuthentication', ctx)
    // The gateway's pods are in istio-system, where a policy must be to select them.
    const metadata = {name: `${ctx.config.name}-ingress`, namespace: 'istio-system', labels: meshLabels(ctx)}
    if (jwtRules.length > 0) out.push({file: 'ingress', object: new RequestAuthentication({metadata, spec: {selector: {matchLabels: {istio: 'ingressgateway'}}, jwtRules}})})
  }
  return out
}

/** Whether rules read a request's token: its principal or its claims. */
function readsToken(a: ServiceConfig['policy']['authorization']): boolean {
  const rules = [...(a?.allow ?? []), ...(a?.deny ?? [])]
  return rules.some((r) => r.requestPrincipals || r.notRequestPrincipals || r.when?.some((c) => c.key.startsWith('request.auth.')))
}

/** `cluster.local/ns/<mesh>/sa/x` → `cluster.local/ns/<namespace>/sa/x`: the identity the same service has in the cluster. */
function principal(p: string, ctx: ExportContext): string {
  return principalOf(p).replace(new RegExp(`^([^/]+)/ns/${ctx.config.name}/sa/`), `$1/ns/${ctx.namespace}/sa/`)
}

function ruleOf(r: AuthorizationRule, where: string, ctx: ExportContext): Rule {
  const trustDomain = ctx.config.security?.trustDomain ?? DEFAULT_TRUST_DOMAIN
  const base: Source = {}
  if (r.principals) base.principals = r.principals.map((x) => principal(x, ctx))
  if (r.notPrincipals) base.notPrincipals = r.notPrincipals.map((x) => principal(x, ctx))
  if (r.requestPrincipals) base.requestPrincipals = r.requestPrincipals
  if (r.notRequestPrincipals) base.notRequestPrincipals = r.notRequestPrincipals
  for (const rp of [...(r.requestPrincipals ?? []), ...(r.notRequestPrincipals ?? [])]) {
    if (rp.startsWith(`${DEV_ISSUER}/`)) ctx.losses.add(where, `${rp} names a token of meshsim's development issuer (mesh token), which no cluster trusts`, 'the rule as written: give your identity provider\'s issuer')
  }
  let sources: Source[] = Object.keys(base).length > 0 ? [base] : []
  if (r.from) {
    const names = r.from.filter((f) => f !== 'unknown')
    const fromPrincipals = names.map((f) => (f === 'ingress' ? INGRESS_GATEWAY_PRINCIPAL : `${trustDomain}/ns/${ctx.namespace}/sa/${f}`))
    if (base.principals && names.length > 0) {
      ctx.losses.add(`${where}.from`, 'Istio cannot require both from and principals of one caller (a source\'s principals are alternatives)', `principals of from only (${fromPrincipals.join(', ')})`)
    }
    sources = []
    if (names.length > 0) sources.push({...base, principals: fromPrincipals})
    // `unknown` is a call without a mesh identity (to an instance's published address): Istio's notPrincipals ["*"].
    if (r.from.includes('unknown')) {
      const {principals: _p, ...rest} = base
      sources.push({...rest, notPrincipals: ['*']})
    }
  }
  const operation: NonNullable<NonNullable<Rule['to']>[number]['operation']> = {}
  if (r.methods) operation.methods = r.methods
  if (r.notMethods) operation.notMethods = r.notMethods
  if (r.paths) operation.paths = r.paths
  if (r.notPaths) operation.notPaths = r.notPaths
  const rule: Rule = {}
  if (sources.length > 0) rule.from = sources.map((source) => ({source}))
  if (Object.keys(operation).length > 0) rule.to = [{operation}]
  if (r.when) rule.when = r.when.map((c) => ({key: c.key, ...(c.values ? {values: c.values} : {}), ...(c.notValues ? {notValues: c.notValues} : {})}))
  return rule
}

function jwtRulesOf(config: RequestAuthenticationConfig, where: string, ctx: ExportContext): IstioJwtRule[] {
  const out: IstioJwtRule[] = []
  config.jwtRules.forEach((r, i) => {
    if (r.issuer === DEV_ISSUER) {
      ctx.losses.add(`${where}.jwtRules.${i}`, "issuer: mesh is meshsim's development issuer (mesh token): its key is on this machine, and no cluster should trust it", "none; your identity provider's issuer and jwksUri")
      return
    }
    out.push(jwtRuleOf(r, ctx))
  })
  return out
}

function jwtRuleOf(r: JwtRule, ctx: ExportContext): IstioJwtRule {
  const rule: IstioJwtRule = {issuer: r.issuer}
  if (r.audiences) rule.audiences = r.audiences
  if (r.jwks) rule.jwks = JSON.stringify(r.jwks)
  if (r.jwksUri !== undefined) {
    // A file here is inlined (its keys as they are now); a mesh service's name becomes its cluster name.
    if (!/^https?:\/\//i.test(r.jwksUri)) rule.jwks = readFileSync(r.jwksUri, 'utf8').trim()
    else rule.jwksUri = clusterUrl(r.jwksUri, ctx)
  }
  if (r.fromHeaders) rule.fromHeaders = r.fromHeaders.map((h) => ({name: h.name, ...(h.prefix === undefined ? {} : {prefix: h.prefix})}))
  if (r.fromParams) rule.fromParams = r.fromParams
  rule.forwardOriginalToken = r.forwardOriginalToken
  if (r.outputPayloadToHeader) rule.outputPayloadToHeader = r.outputPayloadToHeader
  if (r.outputClaimToHeaders) rule.outputClaimToHeaders = r.outputClaimToHeaders.map((h) => ({header: h.header, claim: h.claim}))
  return rule
}

/** `http://auth/jwks.json` (a mesh service by name) → `http://auth.NS.svc.cluster.local/jwks.json`, which istiod can fetch. */
function clusterUrl(uri: string, ctx: ExportContext): string {
  const url = new URL(uri)
  if (!ctx.config.services.some((s: ServiceConfig) => s.name === url.hostname)) return uri
  url.hostname = serviceHost(url.hostname, ctx.namespace)
  return url.toString()
}
