// meshsim's policies as Linkerd takes them: Gateway API HTTPRoutes on the Service, retry and
// timeout annotations, failure accrual; what Linkerd cannot say reported.
import {expect, test} from 'vitest'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
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
