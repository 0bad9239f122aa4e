// Export, then import: a template's policies written as Istio's objects by `mesh export
// kubernetes --mesh istio` and read back by `mesh import istio` into the same mesh.yaml with
// its policy blocks removed give back the same policies, and import reports nothing lost in
// the service's own objects: what export repeats (a service's retries on every route, POST
// and PATCH on routes of their own that retry less) and how it names callers (`ingress` as
// Istio's ingress gateway, `unknown` as notPrincipals) are read back as the one block they
// came from. What the round trip cannot carry (a rate limit, exported as an EnvoyFilter
// import does not read; the ingress's routes) is named here, not ignored.
import {cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseDocument} from 'yaml'
import {expect, test} from 'vitest'
import {loadConfig} from '../../src/sim/config/load-config.js'
import type {PolicyConfig} from '../../src/sim/config/types.js'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import {manifestsYaml} from '../../src/sim/export/manifest-writer.js'
import {importIstio} from '../../src/sim/import/import-istio.js'
import {ROOT} from '../helpers/mesh.js'

/**
 * `principals: [cluster.local/ns/<mesh>/sa/api]` and `from: [api]` name the same caller in
 * meshsim; import writes the shorter (docs/import.md), so both sides are compared in that form.
 */
function sameCallers(policy: PolicyConfig, mesh: string, services: readonly string[]): PolicyConfig {
  const own = new RegExp(`^(?:spiffe://)?cluster\\.local/ns/${mesh}/sa/(${services.join('|')})$`)
  const rule = (r: NonNullable<NonNullable<PolicyConfig['authorization']>['allow']>[number]) => {
    if (!r.principals?.every((p) => own.test(p))) return r
    const {principals, ...rest} = r
    return {from: [...(r.from ?? []), ...principals.map((p) => own.exec(p)![1])], ...rest}
  }
  const a = policy.authorization
  if (!a) return policy
  return {...policy, authorization: {...(a.allow ? {allow: a.allow.map(rule)} : {}), ...(a.deny ? {deny: a.deny.map(rule)} : {})}}
}

/** What export writes as an object kind import does not read. */
const NOT_READ_BACK: Array<keyof PolicyConfig> = ['rateLimit']

/** Every policy export writes for Istio, on one mesh. */
const RICH = `name: rich
ingress: {port: 0, routes: [{prefix: /, service: web}, {prefix: /api/, service: api}]}
services:
  web:
    simulate: {latency: 1ms, calls: [{service: api}, {service: cache}]}
  api:
    versions:
      v1: {simulate: {latency: 1ms}}
      v2: {simulate: {latency: 1ms}}
    policy:
      loadBalancer: least-request
      timeout: 2s
      retries: {attempts: 2, perTryTimeout: 400ms, on: [5xx, gateway-error, connect-failure, 503]}
      weights: {v1: 75, v2: 25}
      routes: [{match: {headers: {x-beta: "1"}, pathPrefix: /beta}, version: v2}]
      mirror: {version: v2, percent: 10}
      outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: 5s, baseEjectionTime: 20s, maxEjectionPercent: 40}
      circuitBreaker: {maxConnections: 50, maxPendingRequests: 20, maxRequests: 100, maxRetries: 5}
      mtls: STRICT
      authorization:
        deny: [{methods: [DELETE], paths: [/admin/*]}]
        allow: [{from: [web, unknown]}, {from: [batch], methods: [GET]}, {from: [ingress], paths: [/public/*]}]
  batch:
    simulate: {latency: 1ms, calls: [{service: api}]}
  cache:
    simulate: {latency: 1ms}
    policy:
      loadBalancer: {type: ring-hash, hashOn: {header: x-user}}
`

test.each([...readdirSync(path.join(ROOT, 'templates')), 'rich'])('the %s template: export --mesh istio, then import istio, gives back its policies', async (template) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), `meshsim-round-trip-${template}-`))
  if (template === 'rich') writeFileSync(path.join(dir, 'mesh.yaml'), RICH)
  else cpSync(path.join(ROOT, 'templates', template), dir, {recursive: true})
  const meshFile = path.join(dir, 'mesh.yaml')
  const original = await loadConfig(meshFile)
  const exported = exportKubernetes(original, {target: 'istio', runnerImage: 'runner:test'})
  writeFileSync(path.join(dir, 'istio.yaml'), manifestsYaml(exported.manifests, 'round trip'))

  const doc = parseDocument(readFileSync(meshFile, 'utf8'))
  for (const s of original.services) doc.deleteIn(['services', s.name, 'policy'])
  writeFileSync(meshFile, doc.toString())
  const {losses} = await importIstio({meshFile, files: [path.join(dir, 'istio.yaml')]})
  // Of the objects import reads, only the ingress's routes are not carried (mesh.yaml's ingress: is not imported).
  const read = losses.filter((l) => /^(VirtualService|DestinationRule|AuthorizationPolicy|PeerAuthentication|RequestAuthentication)\//.test(l.path))
  expect(read.map((l) => `${l.path}: ${l.reason}`)).toEqual(original.ingress ? [expect.stringMatching(new RegExp(`^VirtualService/${original.name}-ingress spec\\.gateways: a gateway's routes`))] : [])

  const back = await loadConfig(meshFile)
  for (const s of original.services) {
    const expected = {...s.policy}
    for (const key of NOT_READ_BACK) delete expected[key]
    const got = back.services.find((x) => x.name === s.name)!.policy
    // Istio has no retry budget: export reported it, and import gives the default back.
    if (expected.retries && got.retries && exported.losses.some((l) => l.path === `services.${s.name}.policy.retries.budget`)) expected.retries = {...expected.retries, budget: got.retries.budget}
    const names = original.services.map((x) => x.name)
    expect(got, s.name).toEqual(sameCallers(expected, original.name, names))
  }
}, 30_000)
