// policy.authorization: who may call a service, as Istio's AuthorizationPolicy decides it at
// the service's inbound side — through the ingress, a caller's sidecar, and the published address.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {sumSeries} from '../helpers/prometheus-parser.js'
import {downMesh, eventually, get, json, mesh, upMesh} from '../helpers/mesh.js'

const POLICY = `
      authorization:
        allow:
          - from: [front]
          - from: [ingress]
            methods: [GET]
            paths: [/public/*]
        deny:
          - paths: [/admin*]`

/** A request from `service`'s instance through its sidecar for `api` ($API_URL). */
async function callApi(dir: string, service: string, apiPath: string) {
  const r = await mesh(dir, ['exec', service, '--', 'env', 'CALL=API_URL', `CALL_PATH=${apiPath}`, 'node', 'fixtures/call-dependency.js'])
  return /called (\d+)/.exec(r.stdout)?.[1] ?? `exit ${r.exitCode}: ${r.stderr}`
}

describe('policy.authorization', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: authz
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
services:
  front: {command: node fixtures/echo-server.js, dependsOn: [api]}
  batch: {command: node fixtures/echo-server.js, dependsOn: [api]}
  api:
    command: node fixtures/echo-server.js
    policy:${POLICY}
`,
    ))
  })

  afterAll(() => downMesh(dir))

  test('the ingress gets what its rule allows (GET /public/*) and 403 RBAC with the reason for the rest', async () => {
    expect((await get(`${ingress}/public/logo.png`)).status).toBe(200)
    const post = await fetch(`${ingress}/public/logo.png`, {method: 'POST', body: 'x'})
    expect(post.status).toBe(403)
    expect(post.headers.get('x-mesh-response-flags')).toBe('RBAC')
    expect(await post.text()).toBe('RBAC: access denied: "ingress" may not make this call to "api": no allow rule matches (policy.authorization)\n')
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

  test('a call to the published address comes from "unknown", which no rule allows', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const api = status.services.find((s) => s.name === 'api')!.instances[0]
    const direct = await get(`http://${api.inboundAddress}/public/x`)
    expect(direct.status).toBe(403)
    expect(direct.text).toContain('"unknown" may not make this call')
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
