// meshsim's authorization and mTLS as Linkerd's policy objects (2.16+). Linkerd authorizes by
// granting only: a Server on the service's port denies what no AuthorizationPolicy admits, and
// each policy admits the callers its authentications name (MeshTLSAuthentication: mesh
// identities, here the callers' ServiceAccounts; NetworkAuthentication: any client of a
// network). meshsim's allow rules map onto that; its deny rules, token rules and conditions
// do not, and are reported.
//
//   allow rule  ─▶ AuthorizationPolicy ─targetRef─▶ Server NAME           (any request)
//                                      └──────────▶ HTTPRoute NAME-allow-N (paths × methods; parent: the Server)
//              ─requiredAuthenticationRefs─▶ MeshTLSAuthentication NAME-allow-N (from:, principals:)
//                                          └▶ NetworkAuthentication NAME-all-networks (any caller)
//   deny: [{}] ─▶ a Server whose accessPolicy is deny, and no policy
//   policy.mtls, security.mtls ─▶ a Server's accessPolicy, the namespace's default-inbound-policy
import {HTTPRoute, type IHTTPRoute} from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute'
import type {Namespace} from 'kubernetes-models/v1/Namespace'
import {DEFAULT_CERT_TTL_MS} from '../config/security-schema.js'
import type {AuthorizationRule, MtlsMode, ServiceConfig} from '../config/types.js'
import {DEFAULT_TRUST_DOMAIN, principalOf} from '../security/spiffe.js'
import {type AccessPolicy, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, type ObjectRef, Server} from './linkerd-policy-schema.js'
import {type ExportContext, type Manifest, meshLabels} from './manifest.js'

type Match = NonNullable<NonNullable<NonNullable<IHTTPRoute['spec']>['rules']>[number]['matches']>[number]
type Method = NonNullable<Match['method']>

const POLICY_GROUP = 'policy.linkerd.io'
const ROUTE_GROUP = 'gateway.networking.k8s.io'
const DEFAULT_POLICY_ANNOTATION = 'config.linkerd.io/default-inbound-policy'
/** Gateway API's HTTP methods: what an HTTPRoute match takes. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']
/**
 * The identity `from: [ingress]` names: the ingress controller serving the exported Ingress,
 * which must be meshed to have one. ingress-nginx's ServiceAccount by default; reported, as
 * the controller is the cluster's choice.
 */
const INGRESS_CONTROLLER: ObjectRef = {kind: 'ServiceAccount', name: 'ingress-nginx', namespace: 'ingress-nginx'}
/** What a rule with no source, or `from: [unknown]`, admits: any client, meshed or not. */
const ALL_NETWORKS = [{cidr: '0.0.0.0/0'}, {cidr: '::/0'}]

/** How each service's inbound side decides, as the namespace's default needs it. */
export type Inbound = AccessPolicy | undefined

/**
 * A service's policy objects. `undefined` as its inbound default: the service has no Server,
 * so the namespace's default applies to it.
 */
export function linkerdPolicyObjects(s: ServiceConfig, ctx: ExportContext): {objects: Manifest[]; inbound: Inbound} {
  const p = s.policy
  const where = `services.${s.name}.policy`
  const allow = p.authorization?.allow ?? []
  const deny = p.authorization?.deny ?? []
  const meta = (name: string) => ({name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}})
  const server = (accessPolicy: AccessPolicy): Manifest => ({
    file: s.name,
    object: new Server({
      metadata: meta(s.name),
      // The container port's name, as workloads.ts names it: every version's pods, whatever their port.
      spec: {podSelector: {matchLabels: {app: s.name}}, port: s.protocol ?? 'http', proxyProtocol: s.protocol === 'grpc' ? 'gRPC' : 'HTTP/1', accessPolicy},
    }),
  })
  const mode = p.mtls ?? ctx.config.security?.mtls ?? 'PERMISSIVE'
  // The mesh-wide DISABLE is reported once, with the namespace.
  if (p.mtls === 'DISABLE') ctx.losses.add(`${where}.mtls`, "Linkerd's mTLS between meshed pods cannot be turned off", 'mTLS (as PERMISSIVE: plaintext from unmeshed clients is accepted)')

  // deny: [{}] refuses every request, whatever else is said: a Server that admits nothing.
  if (deny.some((r) => Object.keys(r).length === 0)) return {objects: [server('deny')], inbound: 'deny'}
  deny.forEach((_r, i) => ctx.losses.add(`${where}.authorization.deny.${i}`, "Linkerd's authorization only grants: it has no rule that refuses", allow.length > 0 ? 'none: the requests it refuses are admitted when an allow rule admits them' : 'none: the requests it refuses are admitted'))
  if (allow.length === 0) {
    if (p.mtls === undefined) return {objects: [], inbound: undefined}
    const access = accessOf(p.mtls)
    return {objects: [server(access)], inbound: access}
  }

  const objects: Manifest[] = [server('deny')]
  const serverRef: ObjectRef = {group: POLICY_GROUP, kind: 'Server', name: s.name}
  const anyNetwork: ObjectRef = {group: POLICY_GROUP, kind: 'NetworkAuthentication', name: `${s.name}-all-networks`}
  let needsNetwork = false
  let routes = 0
  const policy = (name: string, targetRef: ObjectRef, auth: ObjectRef): Manifest => ({file: s.name, object: new AuthorizationPolicy({metadata: meta(name), spec: {targetRef, requiredAuthenticationRefs: [auth]}})})
  const route = (name: string, matches: Match[]): Manifest => ({
    file: s.name,
    object: new HTTPRoute({metadata: meta(name), spec: {parentRefs: [{group: POLICY_GROUP, kind: 'Server', name: s.name}], rules: [{matches}]}}),
  })

  allow.forEach((rule, i) => {
    const at = `${where}.authorization.allow.${i}`
    const name = `${s.name}-allow-${i}`
    const unsupported = unsupportedFields(rule)
    if (unsupported.length > 0) {
      ctx.losses.add(at, `Linkerd authorizes by the caller's mesh identity and the route; it has no ${unsupported.join(', ')}${rule.requestPrincipals || rule.notRequestPrincipals ? ' (it verifies no JWTs)' : ''}`, 'none: the rule is left out, so what only it admitted is refused')
      return
    }
    const matches = matchesOf(rule, at, ctx)
    if (matches === null) return
    const callers = callersOf(rule, mode, at, ctx)
    if (callers.identities.length === 0 && callers.refs.length === 0 && !callers.anyNetwork) return
    const target: ObjectRef = matches ? {group: ROUTE_GROUP, kind: 'HTTPRoute', name} : serverRef
    if (matches) {
      routes++
      objects.push(route(name, matches))
    }
    if (callers.identities.length > 0 || callers.refs.length > 0) {
      const spec = callers.identities.length > 0 ? {identities: callers.identities} : {identityRefs: callers.refs}
      objects.push({file: s.name, object: new MeshTLSAuthentication({metadata: meta(name), spec})})
      objects.push(policy(name, target, {group: POLICY_GROUP, kind: 'MeshTLSAuthentication', name}))
    }
    if (callers.anyNetwork) {
      needsNetwork = true
      objects.push(policy(callers.identities.length > 0 || callers.refs.length > 0 ? `${name}-any-client` : name, target, anyNetwork))
    }
  })

  if (routes > 1) {
    ctx.losses.add(`${where}.authorization.allow`, "Linkerd gives a request one route, the most specific (then the Server's policies): where the paths or methods of two rules overlap, a request both match admits only the callers of the more specific one's", 'each rule as an HTTPRoute of its own')
  }
  if (routes > 0) {
    // Once a Server has routes, Linkerd answers 404 to a request none matches: one for the
    // rest keeps them reaching the service, for the Server-wide policies to decide.
    objects.push(route(`${s.name}-inbound`, [{path: {type: 'PathPrefix', value: '/'}}]))
    // …and it no longer admits the kubelet's probes by itself.
    if (s.health.path !== undefined) {
      needsNetwork = true
      objects.push(route(`${s.name}-probe`, [{path: {type: 'Exact', value: s.health.path}, method: 'GET'}]))
      objects.push(policy(`${s.name}-probe`, {group: ROUTE_GROUP, kind: 'HTTPRoute', name: `${s.name}-probe`}, anyNetwork))
    }
  }
  if (needsNetwork) objects.push({file: s.name, object: new NetworkAuthentication({metadata: meta(anyNetwork.name), spec: {networks: ALL_NETWORKS}})})
  return {objects, inbound: 'deny'}
}

/**
 * The namespace's default-inbound-policy: `deny` when every service denies by default (each
 * has allow rules, or denies all), else what the mesh's mTLS mode asks of a service with no
 * Server; mesh-wide settings Linkerd's installation owns reported.
 */
export function linkerdNamespacePolicy(ctx: ExportContext, namespace: Namespace | undefined, inbound: ReadonlyArray<Inbound>): void {
  const security = ctx.config.security
  if (security) {
    if (security.trustDomain !== DEFAULT_TRUST_DOMAIN) ctx.losses.add('security.trustDomain', "the trust domain is the Linkerd installation's (identityTrustDomain), not an app's", `none; install Linkerd with identityTrustDomain: ${security.trustDomain}`)
    if (security.certTtlMs !== DEFAULT_CERT_TTL_MS) ctx.losses.add('security.certTTL', "workload certificates' lifetime is set by Linkerd's identity service (identity.issuer.issuanceLifetime, 24h by default), not per app", 'none; set it in the Linkerd installation')
    if (security.mtls === 'DISABLE') ctx.losses.add('security.mtls', "Linkerd's mTLS between meshed pods cannot be turned off", 'mTLS (as PERMISSIVE: plaintext from unmeshed clients is accepted)')
  }
  const policy: AccessPolicy | undefined = inbound.length > 0 && inbound.every((i) => i === 'deny') ? 'deny' : security?.mtls === 'STRICT' ? 'all-authenticated' : undefined
  if (!policy || !namespace) return
  namespace.metadata!.annotations = {...namespace.metadata!.annotations, [DEFAULT_POLICY_ANNOTATION]: policy}
}

const accessOf = (mode: MtlsMode): AccessPolicy => (mode === 'STRICT' ? 'all-authenticated' : 'all-unauthenticated')

function unsupportedFields(r: AuthorizationRule): string[] {
  const keys = ['notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'notMethods', 'notPaths', 'when'] as const
  return keys.filter((k) => r[k] !== undefined).map((k) => (k === 'when' ? 'when conditions' : k))
}

/** The rule's methods × paths as an HTTPRoute's matches; undefined: any request; null: none Linkerd can say (reported). */
function matchesOf(r: AuthorizationRule, at: string, ctx: ExportContext): Match[] | undefined | null {
  if (!r.methods && !r.paths) return undefined
  const methods = r.methods?.filter((m) => METHODS.includes(m))
  if (r.methods && methods!.length < r.methods.length) {
    const other = r.methods.filter((m) => !METHODS.includes(m))
    ctx.losses.add(`${at}.methods`, `an HTTPRoute matches Gateway API's methods only, not ${other.join(', ')}`, methods!.length > 0 ? `the rule for ${methods!.join(', ')}` : 'none: the rule is left out')
    if (methods!.length === 0) return null
  }
  const paths: Array<Match['path']> = r.paths ? r.paths.map(pathMatch) : [undefined]
  return paths.flatMap((path) => (methods ?? [undefined]).map((method): Match => ({...(path ? {path} : {}), ...(method ? {method: method as Method} : {})})))
}

/** Istio's path forms (exact, `prefix*`, `*suffix`, `*`) as an HTTPRoute's path match. */
function pathMatch(p: string): NonNullable<Match['path']> {
  if (p === '*') return {type: 'PathPrefix', value: '/'}
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  if (p.endsWith('*')) return {type: 'RegularExpression', value: `^${escape(p.slice(0, -1))}.*$`}
  if (p.startsWith('*')) return {type: 'RegularExpression', value: `^.*${escape(p.slice(1))}$`}
  return {type: 'Exact', value: p}
}

/**
 * Who the rule admits: the callers' ServiceAccounts (identityRefs), `*` for any meshed caller
 * (identities), or any client of the network (a rule naming no caller, or `from: [unknown]`).
 */
function callersOf(r: AuthorizationRule, mode: MtlsMode, at: string, ctx: ExportContext): {refs: ObjectRef[]; identities: string[]; anyNetwork: boolean} {
  const refs: ObjectRef[] = []
  let anyIdentity = false
  let anyNetwork = false
  if (!r.from && !r.principals) {
    // Under STRICT meshsim refuses plaintext before any rule: "anyone" is any meshed caller.
    if (mode === 'STRICT') anyIdentity = true
    else anyNetwork = true
  }
  for (const name of r.from ?? []) {
    if (name === 'unknown') {
      // Under STRICT a caller without an identity never reaches the rules.
      if (mode === 'STRICT') continue
      anyNetwork = true
      ctx.losses.add(`${at}.from`, 'Linkerd cannot require that a caller has no mesh identity: a NetworkAuthentication admits every client of the network, meshed or not', 'a NetworkAuthentication of every network (0.0.0.0/0, ::/0)')
    } else if (name === 'ingress') {
      refs.push(INGRESS_CONTROLLER)
      ctx.losses.add(`${at}.from`, "the ingress is your cluster's ingress controller (meshed, to have an identity), whose ServiceAccount mesh export cannot know", `the ServiceAccount ${INGRESS_CONTROLLER.name} in namespace ${INGRESS_CONTROLLER.namespace} (ingress-nginx's): change it to your controller's`)
    } else refs.push({kind: 'ServiceAccount', name})
  }
  // Both from and principals: meshsim requires both; an identity is one of either list here.
  if (r.from && r.principals) ctx.losses.add(`${at}.principals`, "Linkerd's identities in one authentication are alternatives: it cannot require a caller to be in both from and principals", 'the callers of from and principals, either admitted')
  for (const p of r.principals ?? []) {
    if (p === '*') {
      anyIdentity = true
      continue
    }
    const m = /^[^/]+\/ns\/([^/*]+)\/sa\/([^/*]+)$/.exec(principalOf(p))
    if (!m) {
      ctx.losses.add(`${at}.principals`, `${p}: Linkerd's identities are whole ServiceAccounts (or * for any), not a prefix or suffix of one`, 'none: the principal is left out')
      continue
    }
    // The mesh's name is the namespace meshsim's identities carry; in the cluster it is the export's.
    refs.push(m[1] === ctx.config.name ? {kind: 'ServiceAccount', name: m[2]} : {kind: 'ServiceAccount', name: m[2], namespace: m[1]})
  }
  const unique = [...new Map(refs.map((ref) => [JSON.stringify(ref), ref])).values()]
  return anyIdentity ? {refs: [], identities: ['*'], anyNetwork} : {refs: unique, identities: [], anyNetwork}
}
