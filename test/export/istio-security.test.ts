// meshsim's security as Istio's objects: who may call (AuthorizationPolicy), mTLS
// (PeerAuthentication), tokens (RequestAuthentication), and TLS to instances (DestinationRule).
import {expect, test} from 'vitest'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import {validateManifests} from '../../src/sim/export/manifest-writer.js'
import {parsed, yaml} from '../config/helpers.js'

type Json = Record<string, any>

function exported(source: string, namespace?: string) {
  const result = exportKubernetes(parsed(source), {target: 'istio', runnerImage: 'runner:test', namespace})
  validateManifests(result.manifests)
  const find = (kind: string, name: string, ns?: string): Json | undefined =>
    result.manifests.find((m) => m.object.kind === kind && m.object.metadata?.name === name && (ns === undefined || m.object.metadata?.namespace === ns))?.object.toJSON() as Json
  return {result, find, lossAt: (p: string) => result.losses.find((l) => l.path === p), paths: result.losses.map((l) => l.path)}
}

const mesh = (...lines: string[]) =>
  yaml('name: shop', ...lines, 'services:', '  web:', '    simulate: {latency: 1ms, calls: [{service: api}]}', '  api:', '    simulate: {latency: 1ms}', '    policy:', '      authorization:', '        deny: [{paths: [/admin/*], when: [{key: "request.headers[x-debug]", values: ["1"]}]}]', '        allow:', '          - {from: [web, ingress], methods: [GET]}', '          - {principals: [cluster.local/ns/shop/sa/batch]}', '          - {from: [unknown], paths: [/healthz]}')

test('authorization: a DENY and an ALLOW policy, callers by name as their service accounts, moved to the namespace exported to', () => {
  const {find, paths} = exported(mesh(), 'prod')
  expect(find('AuthorizationPolicy', 'api-deny')!.spec).toEqual({
    selector: {matchLabels: {app: 'api'}},
    action: 'DENY',
    rules: [{to: [{operation: {paths: ['/admin/*']}}], when: [{key: 'request.headers[x-debug]', values: ['1']}]}],
  })
  expect(find('AuthorizationPolicy', 'api-allow')!.spec.rules).toEqual([
    {from: [{source: {principals: ['cluster.local/ns/prod/sa/web', 'cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account']}}], to: [{operation: {methods: ['GET']}}]},
    {from: [{source: {principals: ['cluster.local/ns/prod/sa/batch']}}]},
    // A call with no mesh identity: Istio's notPrincipals ["*"].
    {from: [{source: {notPrincipals: ['*']}}], to: [{operation: {paths: ['/healthz']}}]},
  ])
  // The identity the principals name: each service its own service account.
  expect(find('Deployment', 'web-v1')!.spec.template.spec.serviceAccountName).toBe('web')
  expect(find('ServiceAccount', 'web')).toBeDefined()
  expect(paths).toEqual([])
})

test('`allow: []` has no rules to require, where an Istio ALLOW policy without rules would refuse everything: none is written', () => {
  const {find} = exported(yaml('name: shop', 'services:', '  api:', '    simulate: {latency: 1ms}', '    policy: {authorization: {allow: [], deny: [{methods: [DELETE]}]}}'))
  expect(find('AuthorizationPolicy', 'api-allow')).toBeUndefined()
  expect(find('AuthorizationPolicy', 'api-deny')).toBeDefined()
})

test('mTLS: the mesh-wide mode as the namespace\'s default PeerAuthentication, a service\'s own beside it', () => {
  const {find, lossAt} = exported(yaml('name: shop', 'security: {mtls: STRICT, trustDomain: example.org}', 'services:', '  api:', '    simulate: {latency: 1ms}', '    policy: {mtls: PERMISSIVE}'))
  expect(find('PeerAuthentication', 'default')!.spec).toEqual({mtls: {mode: 'STRICT'}})
  expect(find('PeerAuthentication', 'api')!.spec).toEqual({selector: {matchLabels: {app: 'api'}}, mtls: {mode: 'PERMISSIVE'}})
  expect(lossAt('security.trustDomain')?.nearest).toContain('meshConfig.trustDomain: example.org')
})

test("tokens: a service's jwtRules, a mesh service's jwksUri by its cluster name; the ingress's on the gateway; the dev issuer reported", () => {
  const source = yaml(
    'name: shop',
    'ingress:',
    '  port: 8000',
    '  routes: [{prefix: /, service: api}]',
    '  requestAuthentication: {jwtRules: [{issuer: mesh}, {issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks, forwardOriginalToken: true}]}',
    'services:',
    '  auth: {simulate: {latency: 1ms}}',
    '  api:',
    '    simulate: {latency: 1ms}',
    '    policy:',
    '      requestAuthentication:',
    '        jwtRules:',
    '          - {issuer: https://auth.example.com, jwksUri: http://auth/jwks.json, audiences: [api], outputClaimToHeaders: [{header: x-plan, claim: plan}]}',
  )
  const {find, lossAt} = exported(source)
  expect(find('RequestAuthentication', 'api')!.spec).toEqual({
    selector: {matchLabels: {app: 'api'}},
    jwtRules: [{issuer: 'https://auth.example.com', audiences: ['api'], jwksUri: 'http://auth.shop.svc.cluster.local/jwks.json', forwardOriginalToken: false, outputClaimToHeaders: [{header: 'x-plan', claim: 'plan'}]}],
  })
  expect(find('RequestAuthentication', 'shop-ingress', 'istio-system')!.spec).toEqual({
    selector: {matchLabels: {istio: 'ingressgateway'}},
    jwtRules: [{issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', forwardOriginalToken: true}],
  })
  expect(lossAt('ingress.requestAuthentication.jwtRules.0')?.reason).toContain('development issuer')
})

test("rules that read the ingress's token, in a service with no jwtRules of its own: reported (a sidecar only knows tokens it verified)", () => {
  const source = yaml(
    'name: shop',
    'ingress:',
    '  port: 8000',
    '  routes: [{prefix: /, service: api}]',
    '  requestAuthentication: {jwtRules: [{issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks}]}',
    'services:',
    '  api:',
    '    simulate: {latency: 1ms}',
    '    policy: {authorization: {allow: [{requestPrincipals: ["*"]}]}}',
  )
  expect(exported(source).lossAt('services.api.policy.authorization')?.nearest).toContain("the ingress's jwtRules as its own requestAuthentication")
})

test('TLS to the instances: the DestinationRule\'s tls', () => {
  const {find, paths} = exported(yaml('name: shop', 'services:', '  api:', '    command: ./api', '    image: api:1', '    policy: {tls: {mode: ISTIO_MUTUAL}}'))
  expect(find('DestinationRule', 'api')!.spec.trafficPolicy.tls).toEqual({mode: 'ISTIO_MUTUAL'})
  expect(paths).toEqual([])
})
