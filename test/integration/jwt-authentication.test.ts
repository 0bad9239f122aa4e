// JWT request authentication on a real mesh with real tokens: the mesh's own issuer
// (`mesh token`, `issuer: mesh`) on one service, an issuer whose JWKS a mesh service serves
// (`jwksUri: http://keys/jwks.json`) on another. Istio's semantics: a bad token is 401 with
// the reason, no token passes, a key rotation is learnt, a JWKS that cannot be fetched keeps
// the keys it had.
import http2 from 'node:http2'
import net from 'node:net'
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {exportJWK, generateKeyPair, type JWK, SignJWT, type CryptoKey} from 'jose'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {connect as controlClient} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import {downMesh, get, json, mesh, meshOnFreePort} from '../helpers/mesh.js'
import {raw, statusOf} from '../helpers/raw-http.js'

const IDP = 'https://idp.test'

/** A JWKS server as an identity provider runs one: it serves jwks.json as the file is now. */
const KEYS_SERVER = `
import http from 'node:http'
import {readFileSync} from 'node:fs'
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  res.setHeader('content-type', 'application/json')
  res.end(readFileSync('jwks.json'))
}).listen(Number(process.env.PORT), '127.0.0.1')
`

const yamlFor = (port: number) => `
name: jwt
ingress:
  port: ${port}
  routes:
    - {prefix: /api, service: api}
    - {prefix: /orders, service: orders}
services:
  keys:
    command: node keys.mjs
    health: {path: /healthz}
  api:
    command: node fixtures/echo-server.js
    policy:
      requestAuthentication:
        jwtRules:
          - issuer: mesh
            audiences: [shop]
            outputClaimToHeaders: [{header: x-user-plan, claim: plan}]
  orders:
    command: node fixtures/echo-server.js
    dependsOn: [keys]
    policy:
      requestAuthentication:
        jwtRules:
          - issuer: ${IDP}
            jwksUri: http://keys/jwks.json
      authorization:
        allow: [{requestPrincipals: ["${IDP}/*"]}]
`

interface Key {
  key: CryptoKey
  jwk: JWK
}
const newKey = async (kid: string): Promise<Key> => {
  const {privateKey, publicKey} = await generateKeyPair('ES256', {extractable: true})
  return {key: privateKey, jwk: {...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig'}}
}
const idpToken = (k: Key, sub = 'carol') =>
  new SignJWT({sub}).setProtectedHeader({alg: 'ES256', kid: k.jwk.kid}).setIssuer(IDP).setIssuedAt().setExpirationTime('1h').sign(k.key)

let dir: string
let port: number
let ingress: string
let k1: Key
const serve = (...keys: Key[]) => writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({keys: keys.map((k) => k.jwk)}))
const bearer = (t: string) => ({authorization: `Bearer ${t}`})
const token = async (...args: string[]) => {
  const r = await mesh(dir, ['token', ...args])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.stdout.trim()
}
/** What the echo service received. */
const echoed = (text: string) => JSON.parse(text) as {headers: Record<string, string>; url: string}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  k1 = await newKey('k1')
  ;({dir, port, ingress} = await meshOnFreePort(yamlFor))
  writeFileSync(path.join(dir, 'keys.mjs'), KEYS_SERVER)
  serve(k1)
  const up = await mesh(dir, ['up', '-d'])
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
}, 120_000)

afterAll(async () => {
  if (dir) await downMesh(dir)
}, 60_000)

describe('the mesh as issuer (issuer: mesh)', () => {
  test('a valid token: 200, its claim in a header, the token itself not forwarded', async () => {
    const r = await get(`${ingress}/api/items`, {...bearer(await token('--sub', 'alice', '--claim', 'plan=gold', '--aud', 'shop')), 'x-user-plan': 'forged'})
    expect(r.status, r.text).toBe(200)
    const seen = echoed(r.text).headers
    expect(seen['x-user-plan']).toBe('gold')
    expect(seen.authorization).toBeUndefined()
  })

  test('no token: authentication passes it, and a claim header sent from outside does not reach the app', async () => {
    const r = await get(`${ingress}/api/items`, {'x-user-plan': 'forged'})
    expect(r.status, r.text).toBe(200)
    expect(echoed(r.text).headers['x-user-plan']).toBeUndefined()
  })

  test.each([
    ['expired', ['--expired', '--aud', 'shop'], /Jwt is expired/],
    ['for another audience', ['--aud', 'billing'], /Audiences in Jwt are not allowed/],
  ])('%s: 401 with www-authenticate and the reason', async (_, args, reason) => {
    const r = await get(`${ingress}/api/items`, bearer(await token(...args)))
    expect(r.status).toBe(401)
    expect(r.headers['x-mesh-response-flags']).toBe('JWT')
    expect(String(r.headers['x-mesh-reason'])).toMatch(reason)
    expect(String(r.headers['www-authenticate'])).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/api\/items", error="invalid_token", error_description="/)
  })

  test('a bad signature, another issuer, alg none: 401 each with its reason', async () => {
    const good = await token('--aud', 'shop')
    const [h, p, s] = good.split('.')
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const cases: Array<[string, RegExp]> = [
      [`${h}.${enc({...payload, sub: 'mallory'})}.${s}`, /Jwt verification fails/],
      [await idpToken(await newKey('zz')), /Jwt issuer is not configured/],
      [`${enc({alg: 'none'})}.${enc(payload)}.`, /Jwt header \[alg\] "none" is not supported/],
    ]
    for (const [t, reason] of cases) {
      const r = await get(`${ingress}/api/items`, bearer(t))
      expect(r.status, t).toBe(401)
      expect(String(r.headers['x-mesh-reason'])).toMatch(reason)
    }
  })

  test('a 100 KB token is refused by the listener (431) and a 20 KB one over HTTP/2 by authentication (401): never let through', async () => {
    const huge = `${'a'.repeat(100_000)}.b.c`
    expect(statusOf(await raw(port, `GET /api/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${huge}\r\nConnection: close\r\n\r\n`))).toBe(431)
    const session = http2.connect(ingress)
    try {
      const result = await new Promise<{status: number; reason: string}>((resolve, reject) => {
        const stream = session.request({':path': '/api/items', authorization: `Bearer ${'a'.repeat(20_000)}.b.c`})
        stream.on('response', (hd) => resolve({status: Number(hd[':status']), reason: String(hd['x-mesh-reason'])}))
        stream.on('error', reject)
        stream.resume()
      })
      expect(result.status).toBe(401)
      expect(result.reason).toMatch(/Jwt is too large/)
    } finally {
      session.close()
    }
  })

  test('the control API serves the issuer\'s JWKS, the same mesh token --jwks prints', async () => {
    const printed = json<{keys: JWK[]}>(await mesh(dir, ['token', '--jwks', '--json']))
    expect(printed.keys).toHaveLength(1)
    expect(printed.keys[0]).toMatchObject({kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig'})
    expect(printed.keys[0]).not.toHaveProperty('d')
    expect(await controlClient(meshPaths(dir)).jwks()).toEqual(printed)
  })
})

describe('a JWKS served by a service of the mesh (jwksUri)', () => {
  test('valid with its key; a rotation is learnt at the first token with the new kid', async () => {
    const ok = await get(`${ingress}/orders/x`, bearer(await idpToken(k1)))
    expect(ok.status, ok.text).toBe(200)
    const k2 = await newKey('k2')
    serve(k1, k2)
    const rotated = await get(`${ingress}/orders/x`, bearer(await idpToken(k2)))
    expect(rotated.status, rotated.text).toBe(200)
  })

  test('no token: passes authentication, and an authorization rule requiring a principal refuses it (403)', async () => {
    const r = await get(`${ingress}/orders/x`)
    expect(r.status, r.text).toBe(403)
    expect(r.headers['x-mesh-response-flags']).toBe('RBAC')
    expect(String(r.headers['x-mesh-reason'])).toMatch(/no valid token/)
  })

  test('--jwks-unavailable: cached keys still verify, a new key is refused, and mesh status says the fetch fails', async () => {
    const f = json<{id: string}>(await mesh(dir, ['inject-fault', 'orders', '--jwks-unavailable', '--json']))
    const k3 = await newKey('k3')
    serve(k1, k3)
    await sleep(1_100) // past the refetch limit, so the unknown kid asks for a fetch (which the fault fails)
    const refused = await get(`${ingress}/orders/x`, bearer(await idpToken(k3)))
    expect(refused.status).toBe(401)
    expect(String(refused.headers['x-mesh-reason'])).toMatch(new RegExp(`Jwks doesn't have key to match kid.*fault ${f.id} \\(--jwks-unavailable\\)`))
    expect((await get(`${ingress}/orders/x`, bearer(await idpToken(k1)))).status).toBe(200)

    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.jwks).toEqual([expect.objectContaining({owner: 'orders', issuer: IDP, uri: 'http://keys/jwks.json', kids: ['k1', 'k2'], error: expect.stringContaining(`fault ${f.id}`)})])
    const text = await mesh(dir, ['status'])
    expect(text.stdout).toMatch(/orders: jwksUri http:\/\/keys\/jwks\.json failing since .*the 2 keys fetched before still verify/)

    expect((await mesh(dir, ['clear-faults', f.id])).exitCode).toBe(0)
    await sleep(1_100)
    expect((await get(`${ingress}/orders/x`, bearer(await idpToken(k3)))).status).toBe(200)
    expect(json<MeshStatus>(await mesh(dir, ['status', '--json'])).jwks?.[0].error).toBeUndefined()
  }, 30_000)

  test('requests abandoned while their token is checked or their answer is awaited leave nothing held', async () => {
    const t = await idpToken(k1)
    const mine = await token('--aud', 'shop')
    // Gone at once (while the token is checked), or a little later (while the app takes its 300 ms).
    for (const [prefix, tok] of [['/orders', t], ['/api', mine]]) {
      for (const waitMs of [0, 1, 5, 50, 150]) {
        const socket = net.connect(port, '127.0.0.1')
        socket.on('error', () => undefined)
        await new Promise((resolve) => socket.once('connect', resolve))
        socket.write(`GET ${prefix}/x?delay=300 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`)
        if (waitMs) await sleep(waitMs)
        socket.resetAndDestroy()
      }
    }
    await sleep(600)
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.requestsInFlight ?? 0).toBe(0)
    for (const s of status.services) {
      expect(s.load?.breaker, s.name).toMatchObject({requests: 0, pending: 0, retries: 0})
      for (const n of Object.values(s.load?.instances ?? {})) expect(n, s.name).toBe(0)
    }
  })
})
