// The secure-shop template as README's "Security at the edge" drives it: HTTPS ingress verified
// with the mesh CA, a dev token from `mesh token`, no token refused by authorization (not by
// authentication), a claim deciding the admin path, per-plan rate limits, and STRICT mTLS on a
// published address. The template is used as shipped, only its two ports made free ones.
import {execa} from 'execa'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import tls from 'node:tls'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {freePort, json, mesh} from '../helpers/mesh.js'
import os from 'node:os'

let dir: string
let httpsPort: number
let ca: string

async function token(...args: string[]): Promise<string> {
  const r = await mesh(dir, ['token', ...args])
  expect(r.exitCode, r.stderr).toBe(0)
  return r.stdout.trim()
}

/** One HTTPS request to the ingress, verified against the mesh CA as curl --cacert would. */
function get(pathname: string, bearer?: string): Promise<{status: number; headers: Record<string, unknown>; text: string}> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {host: 'localhost', port: httpsPort, path: pathname, ca: readFileSync(ca), headers: bearer ? {authorization: `Bearer ${bearer}`} : {}, agent: false},
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => resolve({status: res.statusCode!, headers: res.headers, text}))
      },
    )
    req.setTimeout(20_000, () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-secure-shop-'))
  const init = await mesh(dir, ['init', '--template', 'secure-shop'])
  expect(init.exitCode, init.stderr).toBe(0)
  const file = path.join(dir, 'mesh.yaml')
  const [plain, secure] = [await freePort(), await freePort()]
  httpsPort = secure
  const yaml = readFileSync(file, 'utf8')
  expect(yaml).toMatch(/port: 8000/)
  expect(yaml).toMatch(/tls: \{port: 8443\}/)
  writeFileSync(file, yaml.replace('port: 8000', `port: ${plain}`).replace('port: 8443', `port: ${secure}`))
  const up = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  const caPath = await mesh(dir, ['ca', '--path'])
  expect(caPath.exitCode, caPath.stderr).toBe(0)
  ca = caPath.stdout.trim()
}, 120_000)

afterAll(async () => {
  if (dir) await mesh(dir, ['down'])
})

describe('the secure-shop template', () => {
  test('a valid token through the HTTPS ingress is served; no token is refused by authorization', async () => {
    const gold = await token('--sub', 'alice', '--aud', 'shop', '--claim', 'plan=gold')
    const ok = await get('/', gold)
    expect(ok.status, ok.text).toBe(200)
    const none = await get('/')
    expect(none.status).toBe(403)
    expect(String(none.headers['x-mesh-reason'])).toMatch(/allow rule/)
    const wrongAudience = await get('/', await token('--sub', 'alice', '--aud', 'other'))
    expect(wrongAudience.status).toBe(401)
    expect(String(wrongAudience.headers['www-authenticate'])).toMatch(/invalid_token/)
  })

  test('curl --cacert "$(mesh ca --path)" verifies the HTTPS ingress and negotiates HTTP/2', async (ctx) => {
    const curl = await execa('curl', ['--version'], {reject: false})
    if (curl.exitCode !== 0) return ctx.skip()
    const gold = await token('--sub', 'alice', '--aud', 'shop', '--claim', 'plan=gold')
    const r = await execa('curl', ['-sS', '--http2', '--cacert', ca, '-H', `Authorization: Bearer ${gold}`, '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `https://localhost:${httpsPort}/`], {reject: false})
    expect(r.stdout, r.stderr).toBe('200 2')
  })

  test('/admin/* needs the groups=admin claim', async () => {
    const user = await token('--sub', 'bob', '--aud', 'shop', '--claim', 'plan=gold')
    const admin = await token('--sub', 'carol', '--aud', 'shop', '--claim', 'plan=gold', '--claim', 'groups=admin')
    const refused = await get('/admin/stats', user)
    expect(refused.status).toBe(403)
    expect(String(refused.headers['x-mesh-reason'])).toMatch(/deny rule 1/)
    expect((await get('/admin/stats', admin)).status).toBe(200)
  })

  test('each consumer has its own bucket at its plan rate', async () => {
    const free = await token('--sub', 'dave', '--aud', 'shop', '--claim', 'plan=free')
    const gold = await token('--sub', 'erin', '--aud', 'shop', '--claim', 'plan=gold')
    // 30 at once: free (10/s) must refuse some, gold (200/s) none; the counts are bounded by the bucket, not timing.
    const freeAnswers = await Promise.all(Array.from({length: 30}, () => get('/', free)))
    const goldAnswers = await Promise.all(Array.from({length: 30}, () => get('/', gold)))
    const limited = freeAnswers.filter((r) => r.status === 429)
    expect(limited.length).toBeGreaterThan(0)
    expect(limited[0].headers['retry-after']).toBeDefined()
    expect(freeAnswers.find((r) => r.status === 200)?.headers['ratelimit-limit']).toBeDefined()
    expect(goldAnswers.filter((r) => r.status !== 200)).toEqual([])
  })

  test('a published address under STRICT refuses a client without a mesh certificate and serves one with api\'s', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.ingress?.httpsUrl).toBe(`https://localhost:${httpsPort}`)
    expect((await mesh(dir, ['status'])).stdout).toContain(`https://localhost:${httpsPort}`)
    const [host, port] = status.services.find((s) => s.name === 'orders')!.instances[0].inboundAddress.split(':')
    const dial = (client: {cert?: Buffer; key?: Buffer}) =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({host, port: Number(port), ca: readFileSync(ca), checkServerIdentity: () => undefined, ...client}, () => {
          socket.write(`GET /orders HTTP/1.1\r\nhost: orders\r\nconnection: close\r\n\r\n`)
        })
        let data = ''
        socket.on('data', (c) => (data += c))
        socket.on('error', (e) => resolve(`error ${e.message}`))
        socket.on('close', () => resolve(data ? `answered ${data.split('\r\n')[0]}` : 'closed'))
        socket.setTimeout(10_000, () => socket.destroy())
      })
    expect(await dial({})).not.toMatch(/answered/)
    const certs = path.join(dir, '.mesh', 'certs', 'api')
    const asApi = await dial({cert: readFileSync(path.join(certs, 'cert.pem')), key: readFileSync(path.join(certs, 'key.pem'))})
    expect(asApi).toBe('answered HTTP/1.1 200 OK')
  })
})
