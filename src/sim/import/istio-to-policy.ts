// Istio resources as edits to a mesh.yaml's policy blocks: VirtualService → routes, weights,
// timeout, retries, mirror; DestinationRule → loadBalancer, circuitBreaker, outlierDetection;
// PeerAuthentication → mtls. A host the mesh does not declare is listed and skipped, never
// guessed; every field with no counterpart is a Loss.
//
//   IstioResource[] + the services mesh.yaml declares ──▶ PolicyEdit[] (path, value) + Loss[]

import {formatPath, type At, type Path} from '../config/checker.js'
import {formatDuration, parseDuration} from '../config/duration.js'
import {isIdempotent} from '../config/retry-semantics.js'
import {ISTIO_KINDS, type IstioResource} from './istio-manifests.js'
import type {Loss} from './loss.js'
import {SecurityImport} from './istio-security.js'

/** One value to set in mesh.yaml, and the resource field it came from. */
export interface PolicyEdit {
  path: Path
  value: unknown
  from: At
}

/** What mesh.yaml declares: each service and its versions. */
export type DeclaredServices = ReadonlyMap<string, readonly string[]>

type LossAt = (at: At, kind: Loss['kind'], reason: string) => void

const RETRY_ON = new Set(['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'])
const SIMPLE_LB: Record<string, string> = {ROUND_ROBIN: 'round-robin', RANDOM: 'random', LEAST_REQUEST: 'least-request', LEAST_CONN: 'least-request'}
const MTLS = ['STRICT', 'PERMISSIVE', 'DISABLE']

export function istioToPolicy(
  resources: readonly IstioResource[],
  declared: DeclaredServices,
  identity: {trustDomain: string; namespace: string},
): {edits: PolicyEdit[]; losses: Loss[]} {
  const edits: PolicyEdit[] = []
  const losses: Loss[] = []
  const loss: LossAt = (at, kind, reason) => {
    const node = at.keyNode && (kind === 'dropped' || at.kind === 'map' || at.kind === 'seq') ? at.keyNode : at.positionNode
    losses.push({file: at.report.file, ...at.report.position(node), path: [resourceName(at), formatPath(at.path)].filter(Boolean).join(' '), kind, reason})
  }
  // Subset → version, from every DestinationRule first: a VirtualService names subsets.
  const subsets = new Map<string, Map<string, string>>()
  for (const r of resources.filter((x) => x.kind === 'DestinationRule')) {
    const service = serviceOf(r.spec?.child('host')?.value)
    const map = new Map<string, string>()
    for (const subset of r.spec?.child('subsets')?.items() ?? []) {
      const name = subset.child('name')?.value
      const version = subset.child('labels')?.child('version')?.value
      if (typeof name === 'string') map.set(name, typeof version === 'string' ? version : name)
    }
    if (service) subsets.set(service, map)
  }
  const known = (at: At, host: unknown): string | undefined => {
    const service = serviceOf(host)
    if (service && declared.has(service)) return service
    loss(at, 'dropped', service ? `"${service}" is not a service of mesh.yaml: skipped (declared: ${[...declared.keys()].join(', ')})` : 'no host: skipped')
    return undefined
  }
  const versionOf = (service: string, subset: unknown, at: At): string | undefined => {
    if (typeof subset !== 'string') return declared.get(service)!.length === 1 ? declared.get(service)![0] : undefined
    const version = subsets.get(service)?.get(subset) ?? subset
    if (declared.get(service)!.includes(version)) return version
    loss(at, 'dropped', `subset ${subset} is version "${version}", which ${service} does not have in mesh.yaml (${declared.get(service)!.join(', ')}): skipped`)
    return undefined
  }

  const security = new SecurityImport([...declared.keys()], known, loss, identity)
  for (const r of resources) {
    if (!r.spec) {
      loss(r.at, 'dropped', `${r.kind} ${r.name} has no spec`)
      continue
    }
    if (r.kind === 'VirtualService') virtualService(r.spec, known, versionOf, edits, loss)
    else if (r.kind === 'DestinationRule') destinationRule(r.spec, known, edits, loss)
    else if (r.kind === 'PeerAuthentication') peerAuthentication(r.spec, known, edits, loss)
    else if (r.kind === 'AuthorizationPolicy') security.authorizationPolicy(r.spec)
    else if (r.kind === 'RequestAuthentication') security.requestAuthentication(r.spec)
    else loss(r.at, 'dropped', `${r.kind} ${r.name}: import reads ${ISTIO_KINDS.join(', ')}`)
  }
  edits.push(...security.edits())
  return {edits, losses: losses.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column)}
}

/** `reviews`, `reviews.shop`, `reviews.shop.svc.cluster.local` → reviews */
function serviceOf(host: unknown): string | undefined {
  return typeof host === 'string' && host !== '' && host !== '*' ? host.split('.')[0] : undefined
}

function resourceName(at: At): string {
  const root = at.report.root()
  return `${root.child('kind')?.value}/${root.child('metadata')?.child('name')?.value}`
}

function policy(service: string, ...rest: Path): Path {
  return ['services', service, 'policy', ...rest]
}

function virtualService(
  spec: At,
  known: (at: At, host: unknown) => string | undefined,
  versionOf: (service: string, subset: unknown, at: At) => string | undefined,
  edits: PolicyEdit[],
  loss: LossAt,
): void {
  const hosts = spec.child('hosts')
  const gateways = spec.child('gateways')
  if (gateways && gateways.items().some((g) => g.value !== 'mesh')) {
    loss(gateways, 'dropped', "a gateway's routes: mesh.yaml's ingress: routes are not imported; write them under ingress.routes")
    return
  }
  const service = hosts ? known(hosts.item(0), hosts.item(0).value) : known(spec, undefined)
  if (!service) return
  for (const [key, at] of spec.entries().map((e) => [e.key, e.at] as const)) {
    if (!['hosts', 'http'].includes(key)) loss(at, 'dropped', key === 'gateways' ? 'the mesh has one ingress: its routes are under ingress:' : `${key}: only http routes are read`)
  }
  const routes: unknown[] = []
  const http = spec.child('http')?.items() ?? []
  // What the route without a match sets applies to the whole service: a matched route saying the same is that policy, repeated.
  const whole = http.find((r) => !r.child('match'))
  const asWhole = (key: string, at: At) => JSON.stringify(toJson(whole?.child(key))) === JSON.stringify(toJson(at))
  http.forEach((rule, i) => {
    if (retriesOnlySafe(rule, http[i + 1])) return
    const dests = rule.child('route')?.items() ?? []
    const matches = rule.child('match')?.items() ?? []
    if (matches.length > 0) {
      const version = dests.length === 1 ? versionOf(service, dests[0].child('destination')?.child('subset')?.value, dests[0]) : undefined
      if (version === undefined) {
        loss(rule, 'dropped', 'a matched route to other than one version of the service: mesh.yaml routes a match to one version')
        return
      }
      for (const m of matches) {
        const match: Record<string, unknown> = {}
        for (const {key, at} of m.entries()) {
          if (key === 'headers') {
            const headers: Record<string, string> = {}
            for (const h of at.entries()) {
              const exact = h.at.child('exact')?.value
              if (typeof exact === 'string') headers[h.key] = exact
              else loss(h.at, 'dropped', 'only exact header matches: mesh.yaml matches a header by its value')
            }
            if (Object.keys(headers).length > 0) match.headers = headers
          } else if (key === 'uri' && typeof at.child('prefix')?.value === 'string') match.pathPrefix = at.child('prefix')!.value
          else loss(at, 'dropped', `match on ${key}${key === 'uri' ? ' other than a prefix' : ''}: mesh.yaml matches headers and a path prefix`)
        }
        if (Object.keys(match).length > 0) routes.push({match, version})
      }
      for (const {key, at} of rule.entries()) {
        if (['match', 'route', 'name'].includes(key) || asWhole(key, at)) continue
        loss(at, 'dropped', `${key} on a matched route, other than the route without a match's: mesh.yaml sets it once for the service (from the route without a match)`)
      }
      return
    }
    // The route without a match: what applies to the service's traffic as a whole.
    const weights: Record<string, number> = {}
    for (const d of dests) {
      const dest = d.child('destination')
      if (serviceOf(dest?.child('host')?.value) !== service) {
        loss(d, 'dropped', `a destination other than ${service}: mesh.yaml routes a service's traffic among its own versions`)
        continue
      }
      const version = versionOf(service, dest?.child('subset')?.value, d)
      const weight = d.child('weight')?.value
      if (version !== undefined) weights[version] = typeof weight === 'number' ? weight : dests.length === 1 ? 100 : 0
    }
    // Weights that lost a destination no longer say the split that was meant: none rather than a guess.
    if (Object.keys(weights).length < dests.length) {
      if (dests.length > 1) loss(rule.child('route')!, 'dropped', 'weights: a destination above was skipped, so the split is not imported')
    } else if (dests.length > 1) edits.push({path: policy(service, 'weights'), value: weights, from: rule.child('route')!})
    for (const {key, at} of rule.entries()) {
      if (key === 'route' || key === 'name') continue
      if (key === 'timeout') {
        const ms = typeof at.value === 'string' ? parseDuration(at.value) : undefined
        if (ms) edits.push({path: policy(service, 'timeout'), value: formatDuration(ms), from: at})
        else loss(at, 'dropped', `timeout ${String(at.value)}: not a duration the mesh reads`)
      } else if (key === 'retries') retries(service, at, edits, loss)
      else if (key === 'mirror') {
        const version = serviceOf(at.child('host')?.value) === service ? versionOf(service, at.child('subset')?.value, at) : undefined
        const percent = rule.child('mirrorPercentage')?.child('value')?.value
        if (version) edits.push({path: policy(service, 'mirror'), value: {version, percent: typeof percent === 'number' ? percent : 100}, from: at})
        else loss(at, 'dropped', 'mirroring to another service: mesh.yaml mirrors to a version of the same service')
      } else if (key === 'mirrorPercentage') continue
      else loss(at, 'dropped', key === 'fault' ? 'a standing fault: inject it with mesh inject-fault (or faults.inject in mesh.yaml)' : `${key}: no counterpart in a service's policy`)
    }
  })
  if (routes.length > 0) edits.push({path: policy(service, 'routes'), value: routes, from: spec.child('http')!})
}

/**
 * Whether `rule` is `next` for non-idempotent methods only, retrying on less of what `next`
 * retries on: how export writes meshsim's rule that a POST or PATCH is never replayed (but
 * after a connect failure), which mesh.yaml's one retries block already says.
 */
function retriesOnlySafe(rule: At, next: At | undefined): boolean {
  if (!next) return false
  const matches = rule.child('match')?.items() ?? []
  const methods = matches.map((m) => m.child('method')?.child('regex')?.value)
  if (matches.length === 0 || !methods.every((m) => typeof m === 'string' && m.split('|').every((x) => /^[A-Z]+$/.test(x) && !isIdempotent(x)))) return false
  const {retries: mine, name: _n, match, ...body} = toJson(rule) as Record<string, unknown>
  const {retries: theirs, name: _m, match: theirMatch, ...nextBody} = toJson(next) as Record<string, unknown>
  const withoutMethod = (match as Array<Record<string, unknown>>).map(({method: _x, ...m}) => m)
  if (JSON.stringify(body) !== JSON.stringify(nextBody) || JSON.stringify(withoutMethod) !== JSON.stringify(theirMatch ?? [{}])) return false
  const r = (mine ?? {}) as {attempts?: number; perTryTimeout?: string; retryOn?: string}
  const t = (theirs ?? {}) as typeof r
  if (r.attempts === 0) return true
  const on = (x: typeof r) => new Set((x.retryOn ?? '').split(','))
  return r.attempts === t.attempts && r.perTryTimeout === t.perTryTimeout && [...on(r)].every((o) => on(t).has(o))
}

function toJson(at: At | undefined): unknown {
  return (at?.node as {toJSON?: () => unknown} | undefined)?.toJSON?.() ?? at?.value
}

function retries(service: string, at: At, edits: PolicyEdit[], loss: LossAt): void {
  const out: Record<string, unknown> = {}
  const attempts = at.child('attempts')?.value
  if (typeof attempts === 'number') out.attempts = attempts
  const perTry = at.child('perTryTimeout')?.value
  const perTryMs = typeof perTry === 'string' ? parseDuration(perTry) : undefined
  if (perTryMs) out.perTryTimeout = formatDuration(perTryMs)
  const retryOn = at.child('retryOn')
  if (typeof retryOn?.value === 'string') {
    const on: Array<string | number> = []
    for (const name of retryOn.value.split(',').map((s) => s.trim())) {
      if (RETRY_ON.has(name)) on.push(name)
      else if (/^\d{3}$/.test(name)) on.push(Number(name))
      else loss(retryOn, 'dropped', `retryOn ${name}: not a condition the mesh retries on (${[...RETRY_ON].join(', ')} or a status)`)
    }
    if (on.length > 0) out.on = on
  }
  for (const {key, at: other} of at.entries()) if (!['attempts', 'perTryTimeout', 'retryOn'].includes(key)) loss(other, 'dropped', `retries.${key}: no counterpart in policy.retries`)
  if (out.attempts === undefined) {
    loss(at, 'dropped', 'retries without attempts')
    return
  }
  // Istio retries twice unless told not to; mesh.yaml retries only when it says so.
  if (out.attempts === 0) return
  edits.push({path: policy(service, 'retries'), value: out, from: at})
}

function destinationRule(spec: At, known: (at: At, host: unknown) => string | undefined, edits: PolicyEdit[], loss: LossAt): void {
  const service = known(spec.child('host') ?? spec, spec.child('host')?.value)
  if (!service) return
  for (const s of spec.child('subsets')?.items() ?? []) {
    const tp = s.child('trafficPolicy')
    if (tp) loss(tp, 'dropped', "a subset's own traffic policy: mesh.yaml has one policy per service")
  }
  for (const {key, at} of spec.entries()) if (!['host', 'subsets', 'trafficPolicy'].includes(key)) loss(at, 'dropped', `${key}: no counterpart in a service's policy`)
  const tp = spec.child('trafficPolicy')
  if (!tp) return
  for (const {key, at} of tp.entries()) {
    if (key === 'loadBalancer') {
      const simple = at.child('simple')?.value
      const hash = at.child('consistentHash')
      if (typeof simple === 'string' && SIMPLE_LB[simple]) edits.push({path: policy(service, 'loadBalancer'), value: SIMPLE_LB[simple], from: at})
      else if (typeof hash?.child('httpHeaderName')?.value === 'string') edits.push({path: policy(service, 'loadBalancer'), value: {type: 'ring-hash', hashOn: {header: hash.child('httpHeaderName')!.value}}, from: at})
      else if (typeof hash?.child('httpCookie')?.child('name')?.value === 'string') edits.push({path: policy(service, 'loadBalancer'), value: {type: 'ring-hash', hashOn: {cookie: hash.child('httpCookie')!.child('name')!.value}}, from: at})
      else loss(at, 'dropped', 'a load balancer the mesh does not have (it has ROUND_ROBIN, RANDOM, LEAST_REQUEST and a consistent hash on a header or a cookie)')
    } else if (key === 'connectionPool') {
      const breaker: Record<string, number> = {}
      const take = (from: At | undefined, field: string, to: string) => {
        const v = from?.child(field)?.value
        if (typeof v === 'number') breaker[to] = v
      }
      take(at.child('tcp'), 'maxConnections', 'maxConnections')
      take(at.child('http'), 'http1MaxPendingRequests', 'maxPendingRequests')
      take(at.child('http'), 'http2MaxRequests', 'maxRequests')
      take(at.child('http'), 'maxRetries', 'maxRetries')
      for (const part of ['tcp', 'http'] as const) {
        for (const {key: field, at: other} of at.child(part)?.entries() ?? []) {
          if (!['maxConnections', 'http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries'].includes(field)) loss(other, 'dropped', `connectionPool.${part}.${field}: policy.circuitBreaker has maxConnections, maxPendingRequests, maxRequests and maxRetries`)
        }
      }
      if (Object.keys(breaker).length > 0) edits.push({path: policy(service, 'circuitBreaker'), value: breaker, from: at})
    } else if (key === 'outlierDetection') {
      const out: Record<string, unknown> = {}
      for (const {key: field, at: v} of at.entries()) {
        if (['consecutive5xxErrors', 'consecutiveGatewayErrors', 'maxEjectionPercent'].includes(field) && typeof v.value === 'number') out[field] = v.value
        else if (['interval', 'baseEjectionTime'].includes(field) && typeof v.value === 'string' && parseDuration(v.value) !== undefined) out[field] = formatDuration(parseDuration(v.value)!)
        else loss(v, 'dropped', `outlierDetection.${field}: no counterpart in policy.outlierDetection`)
      }
      edits.push({path: policy(service, 'outlierDetection'), value: out, from: at})
    } else loss(at, 'dropped', key === 'tls' ? 'tls to an upstream: the mesh sets TLS between its sidecars itself (security.mtls, policy.tls)' : `trafficPolicy.${key}: no counterpart in a service's policy`)
  }
}

function peerAuthentication(spec: At, known: (at: At, host: unknown) => string | undefined, edits: PolicyEdit[], loss: LossAt): void {
  const mode = spec.child('mtls')?.child('mode')
  const app = spec.child('selector')?.child('matchLabels')?.child('app')
  for (const {key, at} of spec.entries()) if (!['mtls', 'selector'].includes(key)) loss(at, 'dropped', `${key}: the mesh sets one mode per service`)
  if (!mode || typeof mode.value !== 'string' || !MTLS.includes(mode.value)) {
    if (mode) loss(mode, 'dropped', `mode ${String(mode.value)}: the mesh has ${MTLS.join(', ')}`)
    return
  }
  if (!spec.child('selector')) {
    edits.push({path: ['security', 'mtls'], value: mode.value, from: mode})
    return
  }
  const service = app ? known(app, app.value) : known(spec.child('selector')!, undefined)
  if (service) edits.push({path: policy(service, 'mtls'), value: mode.value, from: mode})
}
