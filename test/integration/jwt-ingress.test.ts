// jwtRules at the ingress (the gateway's RequestAuthentication) on a real mesh: a token is
// checked where the request comes in, removed before the app, and its principal decides the
// routed service's authorization; a call to the service's published address is not through
// the ingress, so the ingress's rules do not vouch for it.
import {afterAll, beforeAll, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, get, json, mesh, upMesh} from '../helpers/mesh.js'

const yamlFor = (port: number) => `
name: edge
ingress:
  port: ${port}
  routes: [{prefix: /, service: web}]
  requestAuthentication:
    jwtRules: [{issuer: mesh, audiences: [edge], outputClaimToHeaders: [{header: x-user-plan, claim: plan}]}]
services:
  web:
    command: node fixtures/echo-server.js
    policy:
      authorization:
        allow: [{requestPrincipals: [mesh/alice]}]
`

let dir: string
let ingress: string
const token = async (...args: string[]) => {
  const r = await mesh(dir, ['token', ...args])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.stdout.trim()
}

beforeAll(async () => {
  ;({dir, ingress} = await upMesh(yamlFor))
}, 120_000)

afterAll(async () => {
  if (dir) await downMesh(dir)
}, 60_000)

test('alice\'s token: checked at the ingress, removed, its claim passed on, her principal allowed by the service', async () => {
  const r = await get(`${ingress}/x`, {authorization: `Bearer ${await token('--sub', 'alice', '--aud', 'edge', '--claim', 'plan=free')}`})
  expect(r.status, r.text).toBe(200)
  const seen = (JSON.parse(r.text) as {headers: Record<string, string>}).headers
  expect(seen.authorization).toBeUndefined()
  expect(seen['x-user-plan']).toBe('free')
})

test('bob\'s token passes authentication and is refused by the service\'s rule (403); a bad one stops at the ingress (401)', async () => {
  const bob = await get(`${ingress}/x`, {authorization: `Bearer ${await token('--sub', 'bob', '--aud', 'edge')}`})
  expect(bob.status).toBe(403)
  expect(String(bob.headers['x-mesh-reason'])).toContain('mesh/bob')
  const wrongAud = await get(`${ingress}/x`, {authorization: `Bearer ${await token('--sub', 'alice')}`})
  expect(wrongAud.status).toBe(401)
  expect(String(wrongAud.headers['x-mesh-reason'])).toMatch(/Audiences in Jwt are not allowed/)
})

test('the published address is not the ingress: alice\'s token there is nobody\'s (the service has no rules), 403', async () => {
  const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
  const inbound = status.services.find((s) => s.name === 'web')!.instances[0].inboundAddress
  const r = await get(`http://${inbound}/x`, {authorization: `Bearer ${await token('--sub', 'alice', '--aud', 'edge')}`})
  expect(r.status).toBe(403)
})
