// Workload identity on a real mesh: every instance's certificate, key and CA files (MESH_TLS_*),
// `mesh certs`, `mesh certs rotate`, `mesh ca`, certificate faults, and a CA that does not
// hold together — through the real CLI, with openssl as the judge of what was issued.
import {execFileSync} from 'node:child_process'
import {createPrivateKey, X509Certificate} from 'node:crypto'
import {once} from 'node:events'
import {existsSync, readFileSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {connect} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import type {CertificateListing} from '../../src/sim/security/workload-files.js'
import {json, mesh, upMesh} from '../helpers/mesh.js'
import {hasOpenssl} from '../helpers/openssl.js'


let dir: string
let running = false
const control = () => connect(meshPaths(dir))
/** The listing the commands print, straight from the control API where the command is not what a test is about. */
const certs = () => control().certs()
const byService = (list: CertificateListing[]) => Object.fromEntries(list.map((c) => [c.service, c]))
const tlsEnv = async (service: string) => {
  const {env} = await control().execTarget(service)
  return {cert: env.MESH_TLS_CERT, key: env.MESH_TLS_KEY, ca: env.MESH_TLS_CA}
}
const fileSerial = (file: string) => new X509Certificate(readFileSync(file)).serialNumber.toLowerCase()

beforeAll(async () => {
  ;({dir} = await upMesh(
    (port) => `
name: ident
ingress:
  port: ${port}
  routes: [{prefix: /, service: web}]
security:
  trustDomain: example.org
services:
  web:
    simulate: {latency: 1ms, calls: [{service: api}]}
  api:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    replicas: 2
`,
  ))
  running = true
}, 90_000)

afterAll(async () => {
  if (running) await mesh(dir, ['down'])
})

describe('workload certificates on mesh up', () => {
  test('every instance gets its files and their paths; each certificate names its SPIFFE ID and chains to the CA', async () => {
    const listed = byService(json<CertificateListing[]>(await mesh(dir, ['certs', '--json'])))
    expect(Object.keys(listed).sort()).toEqual(['api', 'web'])
    for (const service of ['api', 'web']) {
      const files = await tlsEnv(service)
      expect(files).toEqual(listed[service].files)
      const cert = new X509Certificate(readFileSync(files.cert))
      expect(cert.subjectAltName).toBe(`URI:spiffe://example.org/ns/ident/sa/${service}`)
      expect(listed[service].spiffeId).toBe(`spiffe://example.org/ns/ident/sa/${service}`)
      expect(cert.serialNumber.toLowerCase()).toBe(listed[service].serial)
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))).toBe(true)
      expect(statSync(files.key).mode & 0o777).toBe(0o600)
      expect(statSync(path.dirname(files.key)).mode & 0o777).toBe(0o700)
      expect(statSync(realpathSync(path.join(path.dirname(files.key), '..data'))).mode & 0o777).toBe(0o700)
      expect(readFileSync(files.ca, 'utf8')).toBe(readFileSync(path.join(dir, '.mesh/ca/ca.crt'), 'utf8'))
    }
    // Both replicas of api are the one identity: the same files.
    const instances = (await control().status()).services.find((s) => s.name === 'api')!.instances.map((i) => i.instance)
    expect(instances.length).toBe(2)
    const envs = await Promise.all(instances.map((i) => control().execTarget('api', undefined, i)))
    expect(new Set(envs.map((t) => t.instance)).size).toBe(2)
    expect(new Set(envs.map((t) => t.env.MESH_TLS_CERT)).size).toBe(1)
  })

  test.skipIf(!hasOpenssl)('openssl verify -CAfile "$(mesh ca --path)" accepts every issued certificate, and sees the URI SAN', async () => {
    const caPath = (await mesh(dir, ['ca', '--path'])).stdout.trim()
    expect(caPath).toBe(path.join(dir, '.mesh/ca/ca.crt'))
    const pem = (await mesh(dir, ['ca'])).stdout.trim()
    expect(pem).toBe(readFileSync(caPath, 'utf8').trim())
    for (const c of await certs()) {
      expect(execFileSync('openssl', ['verify', '-CAfile', caPath, c.files!.cert]).toString()).toMatch(/: OK/)
      const san = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', c.files!.cert]).toString()
      expect(san).toContain(`URI:${c.spiffeId}`)
    }
  })

  test('an app can serve and call mutual TLS with its files alone', async () => {
    const api = await tlsEnv('api')
    const web = await tlsEnv('web')
    const read = (f: {cert: string; key: string; ca: string}) => ({cert: readFileSync(f.cert), key: readFileSync(f.key), ca: readFileSync(f.ca)})
    const server = tls.createServer({...read(api), requestCert: true, rejectUnauthorized: true}, (s) => s.end((s.getPeerCertificate() as {subjectaltname?: string}).subjectaltname ?? 'no client certificate'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const socket = tls.connect({
        port: (server.address() as {port: number}).port,
        host: '127.0.0.1',
        ...read(web),
        checkServerIdentity: (_h, cert) => (cert.subjectaltname === 'URI:spiffe://example.org/ns/ident/sa/api' ? undefined : new Error(cert.subjectaltname)),
      })
      let body = ''
      socket.on('data', (d) => (body += d))
      await once(socket, 'end')
      expect(body).toBe('URI:spiffe://example.org/ns/ident/sa/web')
    } finally {
      server.close()
    }
  })
})

describe('mesh certs rotate', () => {
  test('one service: a new serial in the listing and in its files, rotations counted; the others untouched', async () => {
    const before = byService(await certs())
    const after = byService(json<CertificateListing[]>(await mesh(dir, ['certs', 'rotate', 'api', '--json'])))
    expect(after.api.serial).not.toBe(before.api.serial)
    expect(after.api.rotations).toBe(before.api.rotations + 1)
    expect(fileSerial(after.api.files!.cert)).toBe(after.api.serial)
    expect(after.web.serial).toBe(before.web.serial)
  })

  test('every service without one', async () => {
    const before = byService(await certs())
    const r = await mesh(dir, ['certs', 'rotate'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/SERVICE\s+IDENTITY\s+SERIAL\s+NOT BEFORE\s+NOT AFTER\s+ROTATIONS\s+FAULT/)
    const after = byService(await certs())
    for (const s of ['api', 'web']) {
      expect(after[s].serial).not.toBe(before[s].serial)
      expect(after[s].rotations).toBe(before[s].rotations + 1)
      expect(fileSerial(after[s].files!.cert)).toBe(after[s].serial)
    }
  })
})

describe('mesh inject-fault --cert', () => {
  test.each(['expired', 'untrusted', 'wrong-identity'] as const)('%s: the listing and the files show the bad certificate while it is on, the genuine one after', async (kind) => {
    const genuine = byService(await certs()).api
    const inject = await mesh(dir, ['inject-fault', 'api', '--cert', kind, '--json'])
    expect(inject.exitCode, inject.stderr).toBe(0)
    const bad = byService(await certs()).api
    expect(bad.fault).toBe(kind)
    expect(bad.serial).not.toBe(genuine.serial)
    const cert = new X509Certificate(readFileSync(genuine.files!.cert))
    expect(cert.serialNumber.toLowerCase()).toBe(bad.serial)
    const ca = new X509Certificate(readFileSync(genuine.files!.ca))
    if (kind === 'expired') expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now())
    else expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now())
    expect(cert.verify(ca.publicKey)).toBe(kind !== 'untrusted')
    expect(cert.subjectAltName).toBe(kind === 'wrong-identity' ? 'URI:spiffe://example.org/ns/ident/sa/web' : `URI:${genuine.spiffeId}`)
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(genuine.files!.key)))).toBe(true)

    const clear = await mesh(dir, ['clear-faults', 'api'])
    expect(clear.exitCode, clear.stderr).toBe(0)
    const back = byService(await certs()).api
    expect(back.fault).toBeUndefined()
    expect(back.serial).toBe(genuine.serial)
    expect(fileSerial(genuine.files!.cert)).toBe(genuine.serial)
  })
})

describe('a CA directory that does not hold together', () => {
  test('mesh down leaves the CA and takes the keys; mesh up then refuses a CA whose key is not its certificate\'s, naming the file, and leaves it as it was', async () => {
    const down = await mesh(dir, ['down'])
    expect(down.exitCode, down.stderr).toBe(0)
    running = false
    // The keys go with the mesh; the CA stays for the next run.
    expect(existsSync(path.join(dir, '.mesh/certs'))).toBe(false)
    expect(existsSync(path.join(dir, '.mesh/ca/ca.crt'))).toBe(true)
    const keyFile = path.join(dir, '.mesh/ca/ca.key')
    const original = readFileSync(keyFile, 'utf8')
    // Another P-256 key: well formed, but not the certificate's.
    const {generateKeyPairSync} = await import('node:crypto')
    const other = generateKeyPairSync('ec', {namedCurve: 'P-256'}).privateKey.export({type: 'pkcs8', format: 'pem'}) as string
    writeFileSync(keyFile, other)
    const up = await mesh(dir, ['up', '-d'])
    running = up.exitCode === 0
    expect(up.exitCode, up.stdout + up.stderr).toBe(2)
    expect(up.stderr).toContain(`${keyFile} is not the key of ${path.join(dir, '.mesh/ca/ca.crt')}`)
    expect(readFileSync(keyFile, 'utf8')).toBe(other)
    writeFileSync(keyFile, original)
  })
})

describe('rotation at half life on a running mesh', () => {
  let short: string | undefined
  afterAll(async () => {
    if (short) await mesh(short, ['down'])
  })

  test('security.certTTL 10s: a new certificate every 5s, its files swapped whole, the listing counting', async () => {
    ;({dir: short} = await upMesh(
      (port) => `
name: short
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
security: {certTTL: 10s}
services:
  api: {simulate: {latency: 1ms}}
`,
    ))
    const [first] = await connect(meshPaths(short)).certs()
    const base = path.dirname(first.files!.cert)
    // Read as an app that wants a pair for certain reads it: through `..data`, resolved once.
    const pairs: Array<{serial: string; matches: boolean}> = []
    const deadline = Date.now() + 13_000
    while (Date.now() < deadline && new Set(pairs.map((p) => p.serial)).size < 3) {
      const generation = realpathSync(path.join(base, '..data'))
      const cert = new X509Certificate(readFileSync(path.join(generation, 'cert.pem')))
      pairs.push({serial: cert.serialNumber.toLowerCase(), matches: cert.checkPrivateKey(createPrivateKey(readFileSync(path.join(generation, 'key.pem'))))})
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(pairs.every((p) => p.matches)).toBe(true)
    const serials = [...new Set(pairs.map((p) => p.serial))]
    expect(serials.length).toBeGreaterThanOrEqual(3)
    const [now] = await connect(meshPaths(short)).certs()
    expect(now.rotations).toBeGreaterThanOrEqual(2)
    expect(Date.parse(now.notAfter) - Date.parse(now.notBefore)).toBe(10_000 + 60_000)
    expect(fileSerial(now.files!.cert)).toBe(now.serial)
  }, 60_000)
})
