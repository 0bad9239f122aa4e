// Istio resources written into mesh.yaml's policy blocks: what each field becomes, the rest of
// the file (comments too) kept, a host mesh.yaml does not declare listed and skipped, and
// every field with no counterpart in the loss report at its line.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {expect, test} from 'vitest'
import {parse} from 'yaml'
import {loadConfig} from '../../src/sim/config/load-config.js'
import {ConfigError, formatIssue} from '../../src/sim/config/config-error.js'
import {importIstio} from '../../src/sim/import/import-istio.js'
import {formatLoss} from '../../src/sim/import/loss.js'
import {tempDir} from './compose-helpers.js'

const MESH = `name: bookinfo
services:
  # the reviews service, three versions
  reviews:
    versions:
      v1: {simulate: {latency: 10ms}}
      v2: {simulate: {latency: 20ms}}
      v3: {simulate: {latency: 30ms}}
  ratings:
    simulate: {latency: 5ms}
`

const ISTIO = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: canary}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,reset,503,refused-stream"}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 5}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 10}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 50, maxRetries: 2}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 50}
  subsets:
  - {name: canary, labels: {version: v2}}
  - {name: v1, labels: {version: v1}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewers}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/productpage]}
    - source: {principals: [cluster.local/ns/bookinfo/sa/ratings]}
    - source: {namespaces: [bookinfo], ipBlocks: [10.0.0.0/8]}
    to:
    - operation: {methods: [GET]}
    when: [{key: "request.auth.claims[groups]", values: [readers]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin/*]}}]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: mesh
    audiences: [bookinfo]
    outputClaimToHeaders: [{header: x-groups, claim: groups}]
    timeout: 5s
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default}
spec: {}
`

function bookinfo(): {dir: string; meshFile: string; istio: string} {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'mesh.yaml'), MESH)
  writeFileSync(path.join(dir, 'istio.yaml'), ISTIO)
  return {dir, meshFile: path.join(dir, 'mesh.yaml'), istio: path.join(dir, 'istio.yaml')}
}

test('VirtualService, DestinationRule and PeerAuthentication become the policy blocks, and the file stays valid', async () => {
  const {dir, meshFile, istio} = bookinfo()
  const result = await importIstio({meshFile, files: [istio], env: {}})
  expect(result.written).toBe(true)
  const written = readFileSync(meshFile, 'utf8')
  expect(written).toContain('  # the reviews service, three versions\n')
  const mesh = parse(written)
  expect(mesh.services.reviews.policy).toEqual({
    weights: {v1: 90, v3: 10},
    timeout: '2s',
    retries: {attempts: 3, perTryTimeout: '500ms', on: ['5xx', 'reset', 503]},
    mirror: {version: 'v3', percent: 5},
    routes: [{match: {headers: {'end-user': 'jason'}}, version: 'v2'}],
    loadBalancer: {type: 'ring-hash', hashOn: {header: 'x-user'}},
    circuitBreaker: {maxConnections: 100, maxPendingRequests: 10, maxRequests: 50, maxRetries: 2},
    outlierDetection: {consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 50},
    authorization: {
      allow: [
        {principals: ['cluster.local/ns/default/sa/productpage'], methods: ['GET'], when: [{key: 'request.auth.claims[groups]', values: ['readers']}]},
        {from: ['ratings'], methods: ['GET'], when: [{key: 'request.auth.claims[groups]', values: ['readers']}]},
        {methods: ['GET'], when: [{key: 'source.namespace', values: ['bookinfo']}, {key: 'request.auth.claims[groups]', values: ['readers']}]},
      ],
      deny: [{paths: ['/admin/*']}],
    },
    requestAuthentication: {jwtRules: [{issuer: 'mesh', audiences: ['bookinfo'], outputClaimToHeaders: [{header: 'x-groups', claim: 'groups'}]}]},
  })
  expect(mesh.services.ratings.policy).toEqual({mtls: 'STRICT'})
  expect(mesh.security).toEqual({mtls: 'PERMISSIVE'})
  const config = await loadConfig(meshFile, {})
  expect(config.services.find((s) => s.name === 'reviews')!.policy.timeoutMs).toBe(2000)

  expect(result.losses.map((l) => formatLoss(l, dir))).toEqual([
    'istio.yaml:19:50 VirtualService/reviews spec.http[1].retries.retryOn: not carried over: retryOn refused-stream: not a condition the mesh retries on (5xx, gateway-error, reset, connect-failure, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable or a status)',
    'istio.yaml:22:5 VirtualService/reviews spec.http[1].fault: not carried over: a standing fault: inject it with mesh inject-fault (or faults.inject in mesh.yaml)',
    'istio.yaml:35:34 DestinationRule/reviews spec.trafficPolicy.connectionPool.tcp.connectTimeout: not carried over: connectionPool.tcp.connectTimeout: policy.circuitBreaker has maxConnections, maxPendingRequests, maxRequests and maxRetries',
    'istio.yaml:47:3 DestinationRule/details spec.host: not carried over: "details" is not a service of mesh.yaml: skipped (declared: reviews, ratings)',
    'istio.yaml:72:40 AuthorizationPolicy/reviews-viewers spec.rules[0].from[2].source.ipBlocks: not carried over: source.ipBlocks: every caller of a local mesh is 127.0.0.1',
    'istio.yaml:94:5 RequestAuthentication/jwt spec.jwtRules[0].timeout: not carried over: jwtRules.timeout: the mesh\'s jwtRules take issuer, audiences, jwksUri, jwks, fromHeaders, fromParams, forwardOriginalToken, outputPayloadToHeader, outputClaimToHeaders',
    'istio.yaml:96:1 Telemetry/mesh-default: not carried over: Telemetry mesh-default: import reads VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy, RequestAuthentication',
  ])
})

test("Istio's allow-nothing for the whole namespace is a deny of everything on every service, said twice", async () => {
  const {dir, meshFile} = bookinfo()
  writeFileSync(path.join(dir, 'deny.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing}\nspec: {}\n')
  const result = await importIstio({meshFile, files: [path.join(dir, 'deny.yaml')], env: {}})
  const mesh = parse(readFileSync(meshFile, 'utf8'))
  expect(mesh.services.reviews.policy).toEqual({authorization: {deny: [{}]}})
  expect(mesh.services.ratings.policy).toEqual({authorization: {deny: [{}]}})
  expect(result.losses.map((l) => formatLoss(l, dir))).toEqual([
    'deny.yaml:4:1 AuthorizationPolicy/allow-nothing spec: changed: no selector: it applies to every workload, so to each service of mesh.yaml (reviews, ratings)',
    "deny.yaml:4:1 AuthorizationPolicy/allow-nothing spec: changed: ALLOW with no rules (Istio's allow-nothing) is written as deny: [{}], which refuses every request as it does",
  ])
})

test('--dry-run lists each change and writes nothing; importing twice changes nothing more', async () => {
  const {meshFile, istio} = bookinfo()
  const dry = await importIstio({meshFile, files: [istio], dryRun: true, env: {}})
  expect(dry.written).toBe(false)
  expect(readFileSync(meshFile, 'utf8')).toBe(MESH)
  expect(dry.changes).toContainEqual({path: 'services.reviews.policy.timeout', after: '2s'})

  await importIstio({meshFile, files: [istio], env: {}})
  const once = readFileSync(meshFile, 'utf8')
  const again = await importIstio({meshFile, files: [istio], env: {}})
  expect(readFileSync(meshFile, 'utf8')).toBe(once)
  expect(once).not.toMatch(/[&*]a\d/)
  expect(again.changes).toContainEqual({path: 'services.reviews.policy.timeout', before: '2s', after: '2s'})
})

test('a subset naming a version the service does not have is skipped, not guessed', async () => {
  const {dir, meshFile} = bookinfo()
  writeFileSync(path.join(dir, 'vs.yaml'), 'kind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n      weight: 50\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n')
  const result = await importIstio({meshFile, files: [path.join(dir, 'vs.yaml')], env: {}})
  expect(result.changes).toEqual([])
  expect(result.losses.map((l) => formatLoss(l, dir))).toEqual([
    'vs.yaml:6:5 VirtualService/r spec.http[0].route: not carried over: weights: a destination above was skipped, so the split is not imported',
    'vs.yaml:7:7 VirtualService/r spec.http[0].route[0]: not carried over: subset v9 is version "v9", which reviews does not have in mesh.yaml (v1, v2, v3): skipped',
  ])
  expect(readFileSync(meshFile, 'utf8')).toBe(MESH)
})

test('a manifest that is not YAML is refused at its line, and mesh.yaml is left alone', async () => {
  const {dir, meshFile} = bookinfo()
  writeFileSync(path.join(dir, 'bad.yaml'), 'kind: VirtualService\nspec:\n  hosts: [reviews\n')
  const error = await importIstio({meshFile, files: [path.join(dir, 'bad.yaml')], env: {}}).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(ConfigError)
  expect((error as ConfigError).issues.map((i) => formatIssue(i, dir))).toEqual([expect.stringMatching(/^bad\.yaml:4:1 /)])
  expect(readFileSync(meshFile, 'utf8')).toBe(MESH)
})

test("retries: {attempts: 0} (how export turns Istio's default retries off) sets nothing; a gateway's VirtualService is said, not read as a service's", async () => {
  const {dir, meshFile} = bookinfo()
  writeFileSync(path.join(dir, 'vs.yaml'), `kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}], retries: {attempts: 0}}]
---
kind: VirtualService
metadata: {name: ingress}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http: [{route: [{destination: {host: reviews}}]}]
`)
  const result = await importIstio({meshFile, files: [path.join(dir, 'vs.yaml')], env: {}})
  expect(result.changes).toEqual([])
  expect(readFileSync(meshFile, 'utf8')).toBe(MESH)
  expect(result.losses.map((l) => formatLoss(l, dir))).toEqual([
    "vs.yaml:11:3 VirtualService/ingress spec.gateways: not carried over: a gateway's routes: mesh.yaml's ingress: routes are not imported; write them under ingress.routes",
  ])
})

test("a service's retries repeated on each route, and a POST/PATCH twin that retries less, are its one retries block; a route that differs is said", async () => {
  const {dir, meshFile} = bookinfo()
  const retries = '{attempts: 2, perTryTimeout: 300ms, retryOn: "5xx,connect-failure"}'
  const safe = '{attempts: 2, perTryTimeout: 300ms, retryOn: "connect-failure"}'
  writeFileSync(path.join(dir, 'vs.yaml'), `kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - {name: r-ni, match: [{headers: {x-b: {exact: "1"}}, method: {regex: POST|PATCH}}], route: [{destination: {host: reviews, subset: v2}}], timeout: 1s, retries: ${safe}}
  - {name: r, match: [{headers: {x-b: {exact: "1"}}}], route: [{destination: {host: reviews, subset: v2}}], timeout: 1s, retries: ${retries}}
  - {name: other, match: [{headers: {x-c: {exact: "1"}}}], route: [{destination: {host: reviews, subset: v3}}], timeout: 5s, retries: ${retries}}
  - {name: d-ni, match: [{method: {regex: POST|PATCH}}], route: [{destination: {host: reviews, subset: v1}}], timeout: 1s, retries: ${safe}}
  - {name: d, route: [{destination: {host: reviews, subset: v1}}], timeout: 1s, retries: ${retries}}
  - {name: get-only, match: [{method: {regex: GET}}], route: [{destination: {host: reviews, subset: v1}}]}
`)
  const result = await importIstio({meshFile, files: [path.join(dir, 'vs.yaml')], env: {}})
  const mesh = parse(readFileSync(meshFile, 'utf8'))
  expect(mesh.services.reviews.policy).toEqual({
    timeout: '1s',
    retries: {attempts: 2, perTryTimeout: '300ms', on: ['5xx', 'connect-failure']},
    routes: [{match: {headers: {'x-b': '1'}}, version: 'v2'}, {match: {headers: {'x-c': '1'}}, version: 'v3'}],
  })
  // The route's own timeout is not the service's; a GET route is no twin of anything.
  expect(result.losses.map((l) => formatLoss(l, dir))).toEqual([
    "vs.yaml:8:113 VirtualService/reviews spec.http[2].timeout: not carried over: timeout on a matched route, other than the route without a match's: mesh.yaml sets it once for the service (from the route without a match)",
    'vs.yaml:11:31 VirtualService/reviews spec.http[5].match[0].method: not carried over: match on method: mesh.yaml matches headers and a path prefix',
  ])
})

test("Istio's ingress gateway is from: [ingress], a source with no identity from: [unknown], and sources differing only so are one rule", async () => {
  const {dir, meshFile} = bookinfo()
  writeFileSync(path.join(dir, 'ap.yaml'), `kind: AuthorizationPolicy
metadata: {name: reviews}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {principals: [cluster.local/ns/bookinfo/sa/ratings]}
    - source: {notPrincipals: ["*"]}
    - source: {principals: [cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account], requestPrincipals: ["*"]}
    to: [{operation: {methods: [GET]}}]
`)
  await importIstio({meshFile, files: [path.join(dir, 'ap.yaml')], env: {}})
  expect(parse(readFileSync(meshFile, 'utf8')).services.reviews.policy).toEqual({
    authorization: {allow: [{from: ['ratings', 'unknown'], methods: ['GET']}, {from: ['ingress'], requestPrincipals: ['*'], methods: ['GET']}]},
  })
})
