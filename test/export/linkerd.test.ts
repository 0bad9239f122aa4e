// meshsim's policies as Linkerd takes them: Gateway API HTTPRoutes on the Service, retry and
// timeout annotations, failure accrual, Servers and AuthorizationPolicies; what Linkerd cannot say reported.
import {describe, expect, test} from 'vitest'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import {AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server} from '../../src/sim/export/linkerd-policy-schema.js'
import {validateManifests} from '../../src/sim/export/manifest-writer.js'
import {parsed, yaml} from '../config/helpers.js'

type Json = Record<string, any>

function exported(source: string) {
  const result = exportKubernetes(parsed(source), {target: 'linkerd', runnerImage: 'runner:test'})
  validateManifests(result.manifests)
  const find = (kind: string, name: string): Json | undefined => result.manifests.find((m) => m.object.kind === kind && m.object.metadata?.name === name)?.object.toJSON() as Json
  return {result, find, lossAt: (p: string) => result.losses.find((l) => l.path === p), paths: result.losses.map((l) => l.path)}
}

const api = (...policy: string[]) =>
  yaml('name: demo', 'services:', '  api:', '    versions:', '      v1: {simulate: {latency: 1ms}}', '      v2: {simulate: {latency: 1ms}}', '    policy:', ...policy.map((l) => `      ${l}`))

test('versions: a Service per version, the HTTPRoute on the service routing to them by header and weight, with its timeout', () => {
  const {find, paths} = exported(api('loadBalancer: ewma', 'timeout: 2s', 'weights: {v1: 80, v2: 20}', 'routes: [{match: {headers: {x-canary: "1"}}, version: v2}]'))
  expect(find('Service', 'api-v2')!.spec.selector).toEqual({app: 'api', version: 'v2'})
  const route = find('HTTPRoute', 'api')!
  expect(route.spec.parentRefs).toEqual([{group: 'core', kind: 'Service', name: 'api', port: 80}])
  expect(route.spec.rules).toEqual([
    {matches: [{headers: [{type: 'Exact', name: 'x-canary', value: '1'}]}], backendRefs: [{name: 'api-v2', port: 80}], timeouts: {request: '2s'}},
    {backendRefs: [{name: 'api-v1', port: 80, weight: 80}, {name: 'api-v2', port: 80, weight: 20}], timeouts: {request: '2s'}},
  ])
  // Linkerd balances by peak-EWMA, as meshsim's ewma: nothing lost.
  expect(paths).toEqual([])
})

test('retries as annotations; POST and PATCH take a route of their own without them, as meshsim never replays them', () => {
  const {find, lossAt} = exported(api('retries: {attempts: 2, perTryTimeout: 250ms, on: [5xx, gateway-error, 429, reset]}'))
  expect(find('HTTPRoute', 'api')!.metadata.annotations).toEqual({'retry.linkerd.io/limit': '2', 'retry.linkerd.io/http': '5xx,502-504,429', 'retry.linkerd.io/timeout': '250ms'})
  const unsafe = find('HTTPRoute', 'api-not-idempotent')!
  expect(unsafe.metadata.annotations).toBeUndefined()
  expect(unsafe.spec.rules[0].matches).toEqual([{method: 'POST'}, {method: 'PATCH'}, {method: 'CONNECT'}])
  expect(lossAt('services.api.policy.retries.on')?.reason).toContain('reset')
  expect(lossAt('services.api.policy.retries.budget')).toBeDefined()
})

test("outlier detection as the Service's failure accrual, its differences reported; what Linkerd has not, reported", () => {
  const {find, lossAt} = exported(api('outlierDetection: {consecutive5xxErrors: 4, baseEjectionTime: 10s}', 'circuitBreaker: {maxRequests: 10}', 'mirror: {version: v2}'))
  expect(find('Service', 'api')!.metadata.annotations).toEqual({
    'balancer.linkerd.io/failure-accrual': 'consecutive',
    'balancer.linkerd.io/failure-accrual-consecutive-max-failures': '4',
    'balancer.linkerd.io/failure-accrual-consecutive-min-penalty': '10s',
  })
  expect(lossAt('services.api.policy.outlierDetection')?.reason).toContain('no ejection interval')
  expect(lossAt('services.api.policy.circuitBreaker')?.reason).toContain('no connection or request limits')
  expect(lossAt('services.api.policy.mirror')?.reason).toContain('does not mirror')
})

test('the namespace asks for the proxy; a Job runs it as a native sidecar', () => {
  const {find} = exported(yaml('name: demo', 'services:', '  migrate:', '    command: ./migrate', '    image: m:1', '    restart: "no"'))
  expect(find('Namespace', 'demo')!.metadata.annotations).toEqual({'linkerd.io/inject': 'enabled'})
  expect(find('Job', 'migrate-v1')!.spec.template.metadata.annotations).toEqual({'config.beta.linkerd.io/proxy-enable-native-sidecar': 'true'})
})

describe('authorization as Server, AuthorizationPolicy and authentications', () => {
  const mesh = (...lines: string[]) =>
    yaml(
      'name: demo',
      ...lines,
      'services:',
      '  web: {simulate: {latency: 1ms, calls: [{service: api}]}}',
      '  batch: {simulate: {latency: 1ms, calls: [{service: api}]}}',
      '  api:',
      '    simulate: {latency: 1ms}',
      '    policy:',
      '      authorization:',
      '        allow:',
      '          - {from: [web]}',
      '          - {from: [batch], methods: [GET], paths: [/items/*, /health]}',
      '          - {paths: [/public]}',
      '          - {principals: [cluster.local/ns/other/sa/cron, cluster.local/ns/demo/sa/web]}',
      '          - {requestPrincipals: ["*"]}',
      '        deny: [{paths: [/admin/*]}]',
    )

  test("a Server on the service's port that denies by default, each allow rule a policy admitting its callers' ServiceAccounts", () => {
    const {find, lossAt} = exported(mesh())
    expect(find('Server', 'api')!.spec).toEqual({podSelector: {matchLabels: {app: 'api'}}, port: 'http', proxyProtocol: 'HTTP/1', accessPolicy: 'deny'})
    expect(find('MeshTLSAuthentication', 'api-allow-0')!.spec).toEqual({identityRefs: [{kind: 'ServiceAccount', name: 'web'}]})
    expect(find('AuthorizationPolicy', 'api-allow-0')!.spec).toEqual({
      targetRef: {group: 'policy.linkerd.io', kind: 'Server', name: 'api'},
      requiredAuthenticationRefs: [{group: 'policy.linkerd.io', kind: 'MeshTLSAuthentication', name: 'api-allow-0'}],
    })
    // Another namespace's principal keeps its namespace; the mesh's own is the export's namespace.
    expect(find('MeshTLSAuthentication', 'api-allow-3')!.spec).toEqual({identityRefs: [{kind: 'ServiceAccount', name: 'cron', namespace: 'other'}, {kind: 'ServiceAccount', name: 'web'}]})
    // Linkerd has no deny and verifies no JWT: both said, the JWT rule left out (stricter, not wider).
    expect(lossAt('services.api.policy.authorization.deny.0')?.reason).toContain('only grants')
    expect(lossAt('services.api.policy.authorization.allow.4')?.reason).toContain('verifies no JWTs')
    expect(find('AuthorizationPolicy', 'api-allow-4')).toBeUndefined()
    // Rules 1 and 2 are routes of their own: a request matching both takes the more specific.
    expect(lossAt('services.api.policy.authorization.allow')?.reason).toContain('one route, the most specific')
  })

  test('methods and paths: an inbound HTTPRoute on the Server, the policy targeting it; a route for the rest and one for the probes', () => {
    const {find} = exported(mesh())
    const route = find('HTTPRoute', 'api-allow-1')!
    expect(route.spec.parentRefs).toEqual([{group: 'policy.linkerd.io', kind: 'Server', name: 'api'}])
    expect(route.spec.rules).toEqual([
      {matches: [{path: {type: 'RegularExpression', value: '^/items/.*$'}, method: 'GET'}, {path: {type: 'Exact', value: '/health'}, method: 'GET'}]},
    ])
    expect(find('AuthorizationPolicy', 'api-allow-1')!.spec.targetRef).toEqual({group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'api-allow-1'})
    expect(find('HTTPRoute', 'api-inbound')!.spec.rules).toEqual([{matches: [{path: {type: 'PathPrefix', value: '/'}}]}])
    expect(find('HTTPRoute', 'api-probe')!.spec.rules).toEqual([{matches: [{path: {type: 'Exact', value: '/healthz'}, method: 'GET'}]}])
    // A rule naming no caller admits any client: every network.
    expect(find('AuthorizationPolicy', 'api-allow-2')!.spec.requiredAuthenticationRefs).toEqual([{group: 'policy.linkerd.io', kind: 'NetworkAuthentication', name: 'api-all-networks'}])
    expect(find('NetworkAuthentication', 'api-all-networks')!.spec).toEqual({networks: [{cidr: '0.0.0.0/0'}, {cidr: '::/0'}]})
    expect(find('AuthorizationPolicy', 'api-probe')!.spec.requiredAuthenticationRefs[0].kind).toBe('NetworkAuthentication')
  })

  test('the namespace denies by default only when every service does; STRICT mTLS makes it all-authenticated', () => {
    expect(exported(mesh()).find('Namespace', 'demo')!.metadata.annotations).toEqual({'linkerd.io/inject': 'enabled'})
    const strict = exported(mesh('security: {mtls: STRICT}'))
    expect(strict.find('Namespace', 'demo')!.metadata.annotations['config.linkerd.io/default-inbound-policy']).toBe('all-authenticated')
    // Under STRICT a rule naming no caller admits any meshed one, not any client.
    expect(strict.find('MeshTLSAuthentication', 'api-allow-2')!.spec).toEqual({identities: ['*']})
    const closed = exported(
      yaml('name: demo', 'services:', '  a: {simulate: {latency: 1ms}, policy: {authorization: {deny: [{}]}}}', '  b: {simulate: {latency: 1ms}, policy: {authorization: {allow: [{from: [a]}]}}}'),
    )
    expect(closed.find('Namespace', 'demo')!.metadata.annotations['config.linkerd.io/default-inbound-policy']).toBe('deny')
    expect(closed.find('Server', 'a')!.spec.accessPolicy).toBe('deny')
    expect(closed.result.manifests.filter((m) => m.file === 'a' && m.object.kind === 'AuthorizationPolicy')).toEqual([])
    expect(closed.paths).toEqual([])
  })

  test("a service's own mTLS mode is its Server's default; from: [ingress] and [unknown] are said", () => {
    const {find, lossAt} = exported(
      yaml(
        'name: demo',
        'security: {mtls: STRICT}',
        'ingress: {port: 0, routes: [{prefix: /, service: api}]}',
        'services:',
        '  api: {simulate: {latency: 1ms}, policy: {mtls: PERMISSIVE, authorization: {allow: [{from: [ingress, unknown]}]}}}',
        '  open: {simulate: {latency: 1ms}, policy: {mtls: PERMISSIVE}}',
      ),
    )
    expect(find('Server', 'open')!.spec.accessPolicy).toBe('all-unauthenticated')
    expect(find('MeshTLSAuthentication', 'api-allow-0')!.spec).toEqual({identityRefs: [{kind: 'ServiceAccount', name: 'ingress-nginx', namespace: 'ingress-nginx'}]})
    expect(find('AuthorizationPolicy', 'api-allow-0-any-client')!.spec.requiredAuthenticationRefs[0].name).toBe('api-all-networks')
    expect(lossAt('services.api.policy.authorization.allow.0.from')).toBeDefined()
  })

  test("the check refuses what Linkerd's reference does: a wrong type, a missing key, both identity forms, an unknown field", () => {
    const metadata = {name: 'x', namespace: 'demo'}
    const bad = [
      new Server({metadata, spec: {podSelector: {matchLabels: {app: 'x'}}, port: 0, proxyProtocol: 'HTTP/1'}}),
      new Server({metadata, spec: {podSelector: {matchLabels: {app: 'x'}}, port: 'http', proxyProtocol: 'HTTP/3' as 'HTTP/2'}}),
      new AuthorizationPolicy({metadata, spec: {targetRef: {kind: 'Server', name: 'x'}} as never}),
      new MeshTLSAuthentication({metadata, spec: {identities: ['*'], identityRefs: [{kind: 'ServiceAccount', name: 'x'}]} as never}),
      new NetworkAuthentication({metadata, spec: {networks: [{cidr: '10.0.0.0/8', exept: []} as never]}}),
      new MeshTLSAuthentication({metadata: {name: 'X_1', namespace: 'demo'}, spec: {identities: ['*']}}),
    ]
    for (const object of bad) expect(() => object.validate(), JSON.stringify(object.toJSON())).toThrow(/checked against the fields Linkerd's reference gives/)
    expect(() => new MeshTLSAuthentication({metadata, spec: {identities: ['*']}}).validate()).not.toThrow()
  })
})
