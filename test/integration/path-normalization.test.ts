// Issue #18.3: dot segments and encodings walked past policy.authorization. Every listener
// now normalizes the path once (security/path-normalizer.ts) and forwards that path, so what
// authorization, ingress routes and fault selectors judged is what the service gets.
import http from 'node:http'
import http2 from 'node:http2'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, get, json, mesh, upMesh} from '../helpers/mesh.js'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
}

/**
 * One request with its path exactly as written: node:http sends the path it is given,
 * where fetch (and undici's URL parsing) would remove the dot segments before sending.
 */
function send(address: string, path: string): Promise<Answer> {
  const [host, port] = address.replace(/^http:\/\//, '').split(':')
  return new Promise((resolve, reject) => {
    const req = http.request({host, port: Number(port), path, agent: false, timeout: 10_000}, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, text}))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} from ${address} within 10 s`)))
    req.on('error', reject)
    req.end()
  })
}

/** Which instance the echo service answered from, and the path it got. */
const echoed = (answer: Answer) => JSON.parse(answer.text) as {instance: string; url: string}
const pathSeen = (answer: Answer) => echoed(answer).url

const BYPASSES = ['/public/../admin', '/public/%2e%2e/admin', '/public/..%2fadmin', '/public/./../admin', '/public/x/../../secret']

describe('request paths are normalized where they enter the mesh', () => {
  let dir: string
  let ingress: string
  let status: MeshStatus
  const instance = (service: string) => status.services.find((s) => s.name === service)!.instances[0]
  /** How many requests the api instance has served: read from the app itself, past the mesh. */
  const served = async () => (JSON.parse((await get(`http://${instance('api').address}/count`)).text) as {count: number}).count

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: paths
ingress:
  port: ${port}
  routes: [{prefix: /, service: api}, {prefix: /shop, service: shop}]
services:
  api:
    command: node fixtures/echo-server.js
    policy:
      authorization:
        allow:
          - {from: [ingress], paths: [/public/*]}
          - {from: [front]}
        deny:
          - {paths: [/admin*]}
  shop: {command: node fixtures/echo-server.js}
  front: {command: node fixtures/echo-server.js, dependsOn: [api]}
`,
    ))
    status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
  })

  afterAll(() => downMesh(dir))

  test('the five paths of #18.3 are refused (403) at the ingress over HTTP/1.1 and HTTP/2, and never reach the service', async () => {
    const before = await served()
    for (const path of BYPASSES) {
      const answer = await send(ingress, path)
      expect(answer.status, path).toBe(403)
      expect(answer.headers['x-mesh-response-flags'], path).toBe('RBAC')
      expect(answer.text, path).toMatch(path.endsWith('secret') ? /no allow rule matches/ : /deny rule 1 \(paths \/admin\*\) matches/)
    }
    const session = http2.connect(ingress)
    try {
      for (const path of BYPASSES) {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = session.request({':path': path})
          stream.on('response', (headers) => resolve(Number(headers[':status'])))
          stream.on('error', reject)
          stream.resume()
        })
        expect(status, `HTTP/2 ${path}`).toBe(403)
      }
    } finally {
      session.close()
    }
    expect(await served()).toBe(before)
  })

  test("an allowed path reaches the service normalized, its query untouched; a caller's <DEP>_URL listener does the same", async () => {
    const allowed = await send(ingress, '/public/a/./b//c/%7Euser/x/..?q=%2e%2e/../x')
    expect(allowed.status).toBe(200)
    expect(pathSeen(allowed)).toBe('/public/a/b/c/~user/?q=%2e%2e/../x')

    const apiUrl = `http://${instance('front').outbound!.dependencies.api}`
    const fromFront = await send(apiUrl, '/data/../../secret%2Fx?y=1')
    expect(fromFront.status).toBe(200)
    expect(pathSeen(fromFront)).toBe('/secret/x?y=1')
    const before = await served()
    const denied = await send(apiUrl, '/public/..%2Fadmin')
    expect(denied.status).toBe(403)
    expect(denied.text).toContain('deny rule 1 (paths /admin*) matches')
    expect(await served()).toBe(before)
  })

  test("the caller's HTTP_PROXY (absolute form) and an instance's published address forward the normalized path too", async () => {
    const proxy = `http://${instance('front').outbound!.proxy}`
    const proxied = await send(proxy, 'http://api/data/../secret//x?z=%2e')
    expect(proxied.status).toBe(200)
    expect(pathSeen(proxied)).toBe('/secret/x?z=%2e')
    const before = await served()
    expect((await send(proxy, 'http://api/public/%2e%2e/admin')).status).toBe(403)
    expect(await served()).toBe(before)

    const direct = await send(`http://${instance('shop').inboundAddress}`, '/a/%2E%2E/b//c\\d')
    expect(direct.status).toBe(200)
    expect(pathSeen(direct)).toBe('/b/c/d')
  })

  test('a path the mesh cannot normalize is 400 with the reason on every listener, and reaches no service', async () => {
    const apiUrl = `http://${instance('front').outbound!.dependencies.api}`
    const listeners = {ingress, outbound: apiUrl, inbound: `http://${instance('api').inboundAddress}`}
    const before = await served()
    for (const [listener, address] of Object.entries(listeners)) {
      for (const [path, reason] of [
        ['/public/%zz', 'an invalid percent-encoding "%zz"'],
        ['/public/a%00', 'an encoded NUL (%00)'],
        ['/public/a#top', 'a fragment (#)'],
      ]) {
        const answer = await send(address, path)
        expect(answer.status, `${listener} ${path}`).toBe(400)
        expect(answer.headers['x-mesh-reason'], `${listener} ${path}`).toContain(`bad request path: ${reason}`)
      }
    }
    expect(await served()).toBe(before)
    // Nothing was held against the instance: it is still in rotation.
    expect((await send(ingress, '/public/ok')).status).toBe(200)
  })

  test('ingress routes and fault --path selectors match the normalized path', async () => {
    const routed = await send(ingress, '/public/../shop/items')
    expect(routed.status).toBe(200)
    expect(echoed(routed)).toMatchObject({instance: expect.stringMatching(/^shop-/), url: '/shop/items'})

    const injected = await mesh(dir, ['inject-fault', 'shop', '--abort', '418', '--path', '/shop/./broken'])
    expect(injected.exitCode, injected.stderr).toBe(0)
    for (const path of ['/shop/broken', '/shop/x/../broken/now', '/shop/brok%65n', '/shop//broken']) {
      const answer = await send(ingress, path)
      expect(answer.status, path).toBe(418)
      expect(answer.headers['x-mesh-response-flags'], path).toBe('FI')
    }
    expect((await send(ingress, '/shop/broken/../fine')).status).toBe(200)
  })
})
