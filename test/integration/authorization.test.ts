// policy.authorization: who may call a service, as Istio's AuthorizationPolicy decides it at
// the service's inbound side — through the ingress, a caller's sidecar, and the published address.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {sumSeries} from '../helpers/prometheus-parser.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {downMesh, eventually, get, json, mesh, meshDir, upMesh} from '../helpers/mesh.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const REFUSED_ID = '5cf92f3577b34da6a3ce929d0e0e4737'

const POLICY = `
      authorization:
        allow:
          - from: [front]
          - from: [ingress]
            methods: [GET]
            paths: [/public/*]
        deny:
          - paths: [/admin*]`

/** A request from `service`'s instance through its sidecar for `api` ($API_URL, or `dep`'s URL). */
async function callApi(dir: string, service: string, apiPath: string, dep = 'API') {
  const r = await mesh(dir, ['exec', service, '--', 'env', `CALL=${dep}_URL`, `CALL_PATH=${apiPath}`, 'node', 'fixtures/call-dependency.js'])
  return /called (\d+)/.exec(r.stdout)?.[1] ?? `exit ${r.exitCode}: ${r.stderr}`
}

// The same caller named by its SPIFFE ID rather than by service name, and a condition on a header.
const LEDGER_POLICY = `
      authorization:
        allow:
          - principals: [cluster.local/ns/authz/sa/front]
          - from: [ingress]
            when: [{key: "request.headers[x-tenant]", values: [acme, beta-*]}]`

describe('policy.authorization', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: authz
ingress: {port: ${port}, routes: [{prefix: /ledger, service: ledger}, {prefix: /, service: api}]}
services:
  front: {command: node fixtures/echo-server.js, dependsOn: [api, ledger]}
  batch: {command: node fixtures/echo-server.js, dependsOn: [api, ledger]}
  api:
    command: node fixtures/echo-server.js
    policy:${POLICY}
  ledger:
    command: node fixtures/echo-server.js
    policy:${LEDGER_POLICY}
`,
    ))
  })

  afterAll(() => downMesh(dir))

  test('the ingress gets what its rule allows (GET /public/*) and 403 RBAC with the reason for the rest', async () => {
    expect((await get(`${ingress}/public/logo.png`)).status).toBe(200)
    const post = await fetch(`${ingress}/public/logo.png`, {method: 'POST', body: 'x'})
    expect(post.status).toBe(403)
    expect(post.headers.get('x-mesh-response-flags')).toBe('RBAC')
    expect(await post.text()).toBe(
      'RBAC: access denied: "ingress" may not make this call to "api": no allow rule matches: rule 1 wants from front (the caller is ingress); rule 2 wants methods GET (the method is POST) (policy.authorization)\n',
    )
    const denied = await get(`${ingress}/private`)
    expect(denied.status).toBe(403)
    expect(denied.headers['x-mesh-reason']).toContain('RBAC: access denied')
  })

  test("a caller's sidecar: the allowed service passes, another gets 403, and a deny rule wins over an allow", async () => {
    expect(await callApi(dir, 'front', '/data')).toBe('200')
    expect(await callApi(dir, 'batch', '/data')).toBe('403')
    expect(await callApi(dir, 'front', '/admin/users')).toBe('403')
    // Refusals are counted like any mesh-made answer, with the caller.
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const metrics = await (await fetch(`${status.controlUrl}/metrics`)).text()
    expect(sumSeries(metrics, 'istio_requests_total', {source_workload: 'batch', response_code: '403', response_flags: 'RBAC'})).toBe(1)
    expect(sumSeries(metrics, 'istio_requests_total', {source_workload: 'front', response_code: '200'})).toBeGreaterThanOrEqual(1)
  })

  test('principals: [<SPIFFE ID of front>] admits front and refuses batch, as from: [front] does', async () => {
    expect(await callApi(dir, 'front', '/entries', 'LEDGER')).toBe('200')
    expect(await callApi(dir, 'batch', '/entries', 'LEDGER')).toBe('403')
  })

  test('a when condition on a header decides; the refusal names each rule and why; --why says which rule decided', async () => {
    const traced = (id: string) => ({traceparent: `00-${id}-00f067aa0ba902b7-01`})
    const allowed = await get(`${ingress}/ledger/entries`, {'x-tenant': 'beta-eu', ...traced(TRACE_ID)})
    expect(allowed.status, allowed.text).toBe(200)
    const refused = await get(`${ingress}/ledger/entries`, {'x-tenant': 'zeta', ...traced(REFUSED_ID)})
    expect(refused.status).toBe(403)
    expect(refused.headers['x-mesh-reason']).toBe(
      'RBAC: access denied: "ingress" may not make this call to "ledger": no allow rule matches: rule 1 wants principals cluster.local/ns/authz/sa/front (the caller is cluster.local/ns/authz/sa/ingress); rule 2 wants request.headers[x-tenant] in acme|beta-* (it is "zeta") (policy.authorization)',
    )
    expect((await get(`${ingress}/ledger/entries`)).text).toContain('rule 2 wants request.headers[x-tenant] in acme|beta-* (it is absent)')

    const ok = await eventually(async () => {
      const r = await mesh(dir, ['trace', TRACE_ID, '--why', '--width', '400'])
      return r.exitCode === 0 && r.stdout.includes('allowed by') ? r.stdout : undefined
    })
    expect(ok).toContain('why: caller spiffe://cluster.local/ns/authz/sa/ingress (by its sidecar listener)')
    expect(ok).toContain('why: allowed by allow rule 2 (from ingress, when request.headers[x-tenant] in acme|beta-*)')
    const no = await eventually(async () => {
      const r = await mesh(dir, ['trace', REFUSED_ID, '--why', '--width', '400'])
      return r.exitCode === 0 && r.stdout.includes('denied') ? r.stdout : undefined
    })
    expect(no).toContain('why: denied: no allow rule matches: rule 1 wants principals cluster.local/ns/authz/sa/front')
    const [client] = json<Span[]>(await mesh(dir, ['trace', REFUSED_ID, '--json']))
    expect(client).toMatchObject({kind: 'client', status: 403, responseFlags: 'RBAC', peerPrincipal: 'spiffe://cluster.local/ns/authz/sa/ingress', peerAuthn: 'listener'})
  })

  test('a call to the published address comes from "unknown", which no rule allows', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const api = status.services.find((s) => s.name === 'api')!.instances[0]
    const direct = await get(`http://${api.inboundAddress}/public/x`)
    expect(direct.status).toBe(403)
    expect(direct.text).toContain('"unknown" may not make this call')
    // It has no principal: a principals rule cannot admit it.
    const ledger = status.services.find((s) => s.name === 'ledger')!.instances[0]
    const toLedger = await get(`http://${ledger.inboundAddress}/entries`)
    expect(toLedger.status).toBe(403)
    expect(toLedger.text).toContain('rule 1 wants principals cluster.local/ns/authz/sa/front (the caller has no principal)')
  })

  test('mesh validate: a when key that is not one of Istio\'s is an error at file:line:col, naming the keys', async () => {
    const bad = meshDir(
      ['name: bad', 'services:', '  api:', '    command: node fixtures/echo-server.js', '    policy:', '      authorization:', '        allow: [{when: [{key: "request.auth.claim[groups]", values: [admin]}]}]', ''].join('\n'),
    )
    const r = await mesh(bad, ['validate'])
    expect(r.exitCode).toBe(2)
    expect(r.stdout + r.stderr).toContain(
      "mesh.yaml:7:31 services.api.policy.authorization.allow[0].when[0].key: \"request.auth.claim[groups]\" is not one of Istio's condition keys; the keys are request.headers[<name>], request.auth.claims[<claim>]",
    )
  })

  test('mesh validate warns about a declared call that can only be refused; mesh apply changes the policy live', async () => {
    const validate = await mesh(dir, ['validate'])
    expect(validate.stdout + validate.stderr).toContain('"batch" depends on "api", but this policy refuses every call from "batch" (403 RBAC)')
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('from: [front]', 'from: [front, batch]'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('api: policy.authorization')
    expect(await eventually(async () => (await callApi(dir, 'batch', '/data')) === '200')).toBe(true)
  })
})
