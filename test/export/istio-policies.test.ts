// Each meshsim policy as Istio says it, and each one Istio cannot say listed as a loss: what
// a user reads in the VirtualService and DestinationRule, case by case.
import {describe, expect, test} from 'vitest'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import type {Loss} from '../../src/sim/export/loss-report.js'
import {validateManifests} from '../../src/sim/export/manifest-writer.js'
import {parsed, yaml} from '../config/helpers.js'

type Json = Record<string, any>

function exported(source: string) {
  const result = exportKubernetes(parsed(source), {target: 'istio', runnerImage: 'runner:test'})
  validateManifests(result.manifests)
  const find = (kind: string, name: string): Json => {
    const m = result.manifests.find((x) => x.object.kind === kind && x.object.metadata?.name === name)
    if (!m) throw new Error(`no ${kind} ${name} among ${result.manifests.map((x) => `${x.object.kind}/${x.object.metadata?.name}`).join(', ')}`)
    return m.object.toJSON() as Json
  }
  const lossAt = (path: string): Loss | undefined => result.losses.find((l) => l.path === path)
  return {result, find, lossAt, paths: result.losses.map((l) => l.path)}
}

/** A mesh whose `api` service has `policy` (indented lines), beside a `web` that calls it. */
const withPolicy = (...policy: string[]) =>
  yaml('name: demo', 'services:', '  web:', '    simulate: {latency: 1ms, calls: [{service: api}]}', '  api:', '    simulate: {latency: 1ms}', '    policy:', ...policy.map((l) => `      ${l}`))

describe('retries', () => {
  test('meshsim never replays a POST but after a connect failure: the same route for POST/PATCH retries only on that', () => {
    const {find} = exported(withPolicy('timeout: 2s', 'retries: {attempts: 2, perTryTimeout: 500ms, on: [5xx, connect-failure, 503]}'))
    const http = find('VirtualService', 'api').spec.http
    expect(http.map((r: Json) => r.name)).toEqual(['default-not-idempotent', 'default'])
    expect(http[0].match).toEqual([{method: {regex: 'POST|PATCH|CONNECT'}}])
    expect(http[0].retries).toEqual({attempts: 2, perTryTimeout: '500ms', retryOn: 'connect-failure'})
    expect(http[1]).toMatchObject({timeout: '2s', retries: {attempts: 2, perTryTimeout: '500ms', retryOn: '5xx,connect-failure,503'}})
    expect(http[1].match).toBeUndefined()
  })

  test('without retries, none: Istio would otherwise retry twice', () => {
    const {find, paths} = exported(withPolicy('timeout: 1500ms'))
    expect(find('VirtualService', 'api').spec.http).toEqual([expect.objectContaining({name: 'default', timeout: '1500ms', retries: {attempts: 0}})])
    expect(paths).toEqual([])
  })

  test('the retry budget has no Istio equivalent; a backoff other than Envoy\'s is lost too', () => {
    const {lossAt} = exported(withPolicy('retries: {attempts: 3, backoff: {base: 50ms, max: 1s}, budget: {ratio: 0.1}}', 'circuitBreaker: {maxRetries: 7}'))
    expect(lossAt('services.api.policy.retries.budget')).toMatchObject({reason: expect.stringContaining('10% of requests'), nearest: expect.stringContaining('maxRetries (7)')})
    expect(lossAt('services.api.policy.retries.backoff')?.nearest).toContain('base 25ms, max 250ms')
  })

  test('a gRPC service\'s POSTs are retried on the gRPC statuses meshsim names', () => {
    const source = yaml('name: demo', 'services:', '  rpc:', '    protocol: grpc', '    command: ./server', '    image: rpc:1', '    policy:', '      retries: {attempts: 2, on: [unavailable, 5xx]}')
    const http = exported(source).find('VirtualService', 'rpc').spec.http
    expect(http[0].retries.retryOn).toBe('unavailable')
  })
})

describe('load balancing', () => {
  test.each([
    ['round-robin', {simple: 'ROUND_ROBIN'}],
    ['random', {simple: 'RANDOM'}],
    ['least-request', {simple: 'LEAST_REQUEST'}],
    ['{type: ring-hash, hashOn: {header: x-user}}', {consistentHash: {httpHeaderName: 'x-user'}}],
    ['{type: ring-hash, hashOn: {cookie: session}}', {consistentHash: {httpCookie: {name: 'session'}}}],
  ])('%s', (lb, expected) => {
    const {find, paths} = exported(withPolicy(`loadBalancer: ${lb}`))
    expect(find('DestinationRule', 'api').spec.trafficPolicy.loadBalancer).toEqual(expected)
    expect(paths).toEqual([])
  })

  test('peak-EWMA has no Envoy balancer: LEAST_REQUEST, reported', () => {
    const {find, lossAt} = exported(withPolicy('loadBalancer: ewma'))
    expect(find('DestinationRule', 'api').spec.trafficPolicy.loadBalancer).toEqual({simple: 'LEAST_REQUEST'})
    expect(lossAt('services.api.policy.loadBalancer')?.reason).toContain('peak-EWMA')
  })
})

test('circuit breaker and outlier detection become the DestinationRule\'s connectionPool and outlierDetection', () => {
  const {find, paths} = exported(
    withPolicy('circuitBreaker: {maxConnections: 10, maxPendingRequests: 5, maxRequests: 20, maxRetries: 3}', 'outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 50}'),
  )
  const policy = find('DestinationRule', 'api').spec.trafficPolicy
  expect(policy.connectionPool).toEqual({tcp: {maxConnections: 10}, http: {http1MaxPendingRequests: 5, http2MaxRequests: 20, maxRetries: 3}})
  expect(policy.outlierDetection).toEqual({consecutive5xxErrors: 3, consecutiveGatewayErrors: 0, interval: '5s', baseEjectionTime: '60s', maxEjectionPercent: 50})
  expect(paths).toEqual([])
})

describe('rate limits', () => {
  test("a plain token bucket: Envoy's local rate limit, each pod its share, the difference reported", () => {
    const {find, lossAt} = exported(withPolicy('rateLimit: {rate: 100/s, burst: 20}').replace('  api:\n', '  api:\n    replicas: 2\n'))
    const patch = find('EnvoyFilter', 'api-local-rate-limit').spec.configPatches[0]
    expect(find('EnvoyFilter', 'api-local-rate-limit').spec.workloadSelector).toEqual({labels: {app: 'api'}})
    expect(patch.match.context).toBe('SIDECAR_INBOUND')
    expect(patch.patch.value.typed_config.token_bucket).toEqual({max_tokens: 10, tokens_per_fill: 50, fill_interval: '1s'})
    expect(lossAt('services.api.policy.rateLimit')).toMatchObject({reason: expect.stringContaining('each of the 2 pods gets 1/2 of the rate'), nearest: expect.stringContaining('api-local-rate-limit')})
  })
  test('a sliding log has no equivalent at all: reported, nothing written', () => {
    const {result, lossAt} = exported(withPolicy('rateLimit: {algorithm: sliding-log, rate: 100/s}'))
    expect(lossAt('services.api.policy.rateLimit')?.reason).toContain('sliding-log')
    expect(result.manifests.map((m) => m.object.kind)).not.toContain('EnvoyFilter')
  })
})

describe('versions', () => {
  const versions = (...policy: string[]) =>
    yaml('name: demo', 'services:', '  api:', '    versions:', '      v1: {simulate: {latency: 1ms}}', '      v2: {simulate: {latency: 1ms}, replicas: 2}', '    policy:', ...policy.map((l) => `      ${l}`))

  test('subsets per version; weights, header routes and the mirror name them', () => {
    const {find, paths} = exported(versions('weights: {v1: 90, v2: 10}', 'routes: [{match: {headers: {X-Canary: "true"}, pathPrefix: /beta}, version: v2}]', 'mirror: {version: v2, percent: 5}'))
    expect(find('DestinationRule', 'api').spec.subsets).toEqual([{name: 'v1', labels: {version: 'v1'}}, {name: 'v2', labels: {version: 'v2'}}])
    const [route, fallback] = find('VirtualService', 'api').spec.http
    expect(route.match).toEqual([{uri: {prefix: '/beta'}, headers: {'x-canary': {exact: 'true'}}}])
    expect(route.route).toEqual([{destination: {host: 'api.demo.svc.cluster.local', subset: 'v2', port: {number: 80}}}])
    expect(fallback.route.map((r: Json) => [r.destination.subset, r.weight])).toEqual([['v1', 90], ['v2', 10]])
    expect(fallback.mirror).toEqual({host: 'api.demo.svc.cluster.local', subset: 'v2', port: {number: 80}})
    expect(fallback.mirrorPercentage).toEqual({value: 5})
    expect(find('Deployment', 'api-v2').spec.replicas).toBe(2)
    expect(paths).toEqual([])
  })

  test('weights that are no whole percents are rounded to sum 100, and reported', () => {
    const {find, lossAt} = exported(versions('weights: {v1: 33.3, v2: 66.7}'))
    expect(find('VirtualService', 'api').spec.http[0].route.map((r: Json) => r.weight)).toEqual([33, 67])
    expect(lossAt('services.api.policy.weights')?.nearest).toBe('v1 33, v2 67')
  })
})

describe('standing faults', () => {
  const faulted = (...faults: string[]) => yaml('name: demo', 'faults:', '  inject:', ...faults.map((f) => `    - ${f}`), 'services:', '  web:', '    simulate: {latency: 1ms, calls: [{service: api}]}', '  api:', '    simulate: {latency: 1ms}')

  test("at the caller, as Istio injects it: the fault, and nothing lost", () => {
    const {find, paths} = exported(faulted('{service: api, delay: 300ms, percent: 20, at: caller}', '{service: api, abort: 503, percent: 10, at: caller}'))
    expect(find('VirtualService', 'api').spec.http[0].fault).toEqual({delay: {fixedDelay: '300ms', percentage: {value: 20}}, abort: {httpStatus: 503, percentage: {value: 10}}})
    expect(paths).toEqual([])
  })

  test("at the callee (meshsim's default) the caller's retries see it; in Istio they do not: reported", () => {
    const {find, lossAt} = exported(faulted('{service: api, abort: 503}'))
    expect(find('VirtualService', 'api').spec.http[0].fault).toEqual({abort: {httpStatus: 503, percentage: {value: 100}}})
    expect(lossAt('faults.inject.0')?.reason).toContain('not retried')
  })

  test('selectors become a route of its own, first: header, path and the calling service', () => {
    const {find} = exported(faulted('{service: api, delay: 1s, header: x-test=yes, path: /slow, from: web, at: caller}'))
    const [faultRoute, fallback] = find('VirtualService', 'api').spec.http
    expect(faultRoute.match).toEqual([{uri: {prefix: '/slow'}, headers: {'x-test': {exact: 'yes'}}, sourceLabels: {app: 'web'}}])
    expect(faultRoute.fault).toEqual({delay: {fixedDelay: '1s', percentage: {value: 100}}})
    expect(fallback.fault).toBeUndefined()
  })

  test('what Istio cannot inject is reported, not approximated', () => {
    const {find, lossAt} = exported(faulted('{service: api, reset: true}', '{service: api, delay: 100ms, jitter: 50ms, at: caller}'))
    expect(lossAt('faults.inject.0')?.reason).toContain('only delays and aborts')
    expect(lossAt('faults.inject.1')?.reason).toContain('jitter')
    expect(find('VirtualService', 'api').spec.http[0].fault).toEqual({delay: {fixedDelay: '100ms', percentage: {value: 100}}})
  })
})

test('the ingress: longest prefix first (meshsim picks the longest; Istio the first), a rewrite without a double slash', () => {
  const source = yaml(
    'name: demo',
    'ingress:',
    '  port: 8000',
    '  routes:',
    '    - {prefix: /, service: web}',
    '    - {prefix: /api, service: api, rewrite: /}',
    '    - {prefix: /v2/, service: api, rewrite: /next/}',
    'services:',
    '  web: {simulate: {latency: 1ms}}',
    '  api: {simulate: {latency: 1ms}}',
  )
  const {find} = exported(source)
  const http = find('VirtualService', 'demo-ingress').spec.http
  expect(http.map((r: Json) => r.match[0].uri.prefix)).toEqual(['/api', '/v2/', '/'])
  expect(http[0].rewrite).toEqual({uriRegexRewrite: {match: '^/api/?', rewrite: '/'}})
  expect(http[1].rewrite).toEqual({uri: '/next/'})
  expect(find('Gateway', 'demo-ingress').spec.servers).toEqual([{port: {number: 80, name: 'http', protocol: 'HTTP'}, hosts: ['*']}])
})

test("the ingress's routes carry the service's policy: a service's VirtualService binds only its callers' sidecars, not the gateway", () => {
  const source = yaml(
    'name: demo',
    'ingress:',
    '  port: 8000',
    '  routes: [{prefix: /api, service: api}]',
    'services:',
    '  api:',
    '    versions:',
    '      v1: {simulate: {latency: 1ms}}',
    '      v2: {simulate: {latency: 1ms}}',
    '    policy:',
    '      timeout: 3s',
    '      retries: {attempts: 1, on: [5xx]}',
    '      weights: {v1: 70, v2: 30}',
    '      routes: [{match: {headers: {x-beta: "1"}}, version: v2}]',
  )
  const http = exported(source).find('VirtualService', 'demo-ingress').spec.http
  expect(http.map((r: Json) => r.name)).toEqual(['route-0-route-0-not-idempotent', 'route-0-route-0', 'route-0-not-idempotent', 'route-0'])
  expect(http[1]).toMatchObject({match: [{uri: {prefix: '/api'}, headers: {'x-beta': {exact: '1'}}}], route: [{destination: {subset: 'v2'}}], timeout: '3s', retries: {attempts: 1, retryOn: '5xx'}})
  expect(http[3].route.map((r: Json) => [r.destination.subset, r.weight])).toEqual([['v1', 70], ['v2', 30]])
  expect(http[2]).toMatchObject({match: [{uri: {prefix: '/api'}, method: {regex: 'POST|PATCH|CONNECT'}}], retries: {attempts: 0}})
})
