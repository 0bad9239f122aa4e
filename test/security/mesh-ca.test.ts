import {execFileSync} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {spiffeId} from '../../src/sim/security/spiffe.js'
import {hasOpenssl} from '../helpers/openssl.js'


describe('MeshCA', () => {
  it('keeps its root in a 0700 directory with a 0600 key, and reuses it on the next start', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mesh-ca-')), 'ca')
    const first = await MeshCA.loadOrCreate(dir, 'cluster.local')
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600)
    const second = await MeshCA.loadOrCreate(dir, 'cluster.local')
    expect(second.certPem).toBe(first.certPem)
  })

  it('issues a workload certificate whose only SAN is its SPIFFE ID, valid for its TTL, signed by the root', async () => {
    const ca = await MeshCA.create('cluster.local')
    const now = new Date()
    const id = spiffeId('cluster.local', 'shop', 'frontend')
    const leaf = await ca.issue({uri: id, ttlMs: 3600_000, now, commonName: 'frontend'})
    const cert = new X509Certificate(leaf.certPem)
    expect(cert.subjectAltName).toBe(`URI:${id}`)
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
    expect(new Date(cert.validTo).getTime()).toBe(Math.floor((now.getTime() + 3600_000) / 1000) * 1000)
    expect(cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(leaf.keyPem)))).toBe(true)
    expect(cert.serialNumber.toLowerCase()).toBe(leaf.serial.toLowerCase())
  })

  it.skipIf(!hasOpenssl)('openssl verify accepts a workload and a localhost server certificate, and refuses one from another CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-ca-verify-'))
    const ca = await MeshCA.create('cluster.local')
    const other = await MeshCA.create('cluster.local')
    const now = new Date()
    writeFileSync(join(dir, 'ca.crt'), ca.certPem)
    const files = {
      workload: (await ca.issue({uri: spiffeId('cluster.local', 'shop', 'api'), ttlMs: 3600_000, now, commonName: 'api'})).certPem,
      server: (await ca.issue({dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlMs: 3600_000, now, commonName: 'localhost'})).certPem,
      foreign: (await other.issue({uri: spiffeId('cluster.local', 'shop', 'api'), ttlMs: 3600_000, now, commonName: 'api'})).certPem,
    }
    for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, `${name}.crt`), pem)
    const verify = (name: string) => execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, `${name}.crt`)], {stdio: 'pipe'}).toString()
    expect(verify('workload')).toMatch(/: OK/)
    expect(verify('server')).toMatch(/: OK/)
    expect(() => verify('foreign')).toThrow()
    const san = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', join(dir, 'server.crt')]).toString()
    expect(san).toMatch(/DNS:localhost/)
    expect(san).toMatch(/IP Address:127.0.0.1/)
  })

  it('refuses a CA directory whose key does not belong to its certificate, naming the file', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mesh-ca-bad-')), 'ca')
    await MeshCA.loadOrCreate(dir, 'cluster.local')
    const otherDir = join(mkdtempSync(join(tmpdir(), 'mesh-ca-other-')), 'ca')
    await MeshCA.loadOrCreate(otherDir, 'cluster.local')
    writeFileSync(join(dir, 'ca.key'), readFileSync(join(otherDir, 'ca.key')))
    await expect(MeshCA.loadOrCreate(dir, 'cluster.local')).rejects.toThrow(/ca\.key is not the key of .*ca\.crt/)
  })
})
