import {createPrivateKey, X509Certificate} from 'node:crypto'
import {existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {WorkloadFiles} from '../../src/sim/security/workload-files.js'
import {WorkloadIdentities} from '../../src/sim/security/workload-identity.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const TTL = 3600_000

async function setUp() {
  const root = mkdtempSync(join(tmpdir(), 'workload-files-'))
  const clock = new VirtualClock(0, Date.now())
  const ids = await WorkloadIdentities.start({caDir: join(root, 'ca'), trustDomain: 'cluster.local', mesh: 'shop', certTtlMs: TTL, clock})
  return {root, clock, ids, files: new WorkloadFiles(join(root, 'certs'), ids)}
}

/** The pair as an app reading the variables' paths gets it. */
function read(paths: {cert: string; key: string; ca: string}) {
  const cert = new X509Certificate(readFileSync(paths.cert))
  return {cert, matches: cert.checkPrivateKey(createPrivateKey(readFileSync(paths.key))), ca: readFileSync(paths.ca, 'utf8')}
}

describe('WorkloadFiles', () => {
  it('writes a service\'s certificate, key (0600) and the CA bundle in a 0700 directory', async () => {
    const {root, ids, files} = await setUp()
    const paths = await files.ensure('cart')
    expect(paths.cert).toBe(join(root, 'certs', 'cart', 'cert.pem'))
    const {cert, matches, ca} = read(paths)
    expect(cert.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/cart')
    expect(cert.serialNumber.toLowerCase()).toBe((await ids.certificate('cart')).serial)
    expect(matches).toBe(true)
    expect(ca).toBe(ids.ca.certPem)
    expect(statSync(paths.key).mode & 0o777).toBe(0o600)
    for (const dir of [join(root, 'certs'), join(root, 'certs', 'cart'), realpathSync(join(root, 'certs', 'cart', '..data'))]) {
      expect(statSync(dir).mode & 0o777).toBe(0o700)
    }
    expect((await files.list()).map((c) => c.files)).toEqual([paths])
    ids.stop()
  })

  it('rewrites the files at each rotation by swapping one link, keeping the previous generation only', async () => {
    const {root, clock, ids, files} = await setUp()
    const paths = await files.ensure('cart')
    const base = join(root, 'certs', 'cart')
    const serials = [(await ids.certificate('cart')).serial]
    for (let i = 0; i < 3; i++) {
      await clock.advance(TTL / 2)
      serials.push((await ids.certificate('cart')).serial)
      const {cert, matches} = read(paths)
      expect(cert.serialNumber.toLowerCase()).toBe(serials.at(-1))
      expect(matches).toBe(true)
      // The variables name links through ..data, and ..data is a link swapped by rename.
      expect(lstatSync(paths.cert).isSymbolicLink()).toBe(true)
      expect(lstatSync(join(base, '..data')).isSymbolicLink()).toBe(true)
    }
    expect(serials.length).toBe(new Set(serials).size)
    const generations = readdirSync(base).filter((e) => e.startsWith('..') && e !== '..data').sort()
    expect(generations).toEqual([`..${serials[2]}`, `..${serials[3]}`].sort())
    ids.stop()
  })

  it('shows a certificate fault in the files while it is on', async () => {
    const {ids, files} = await setUp()
    const paths = await files.ensure('cart')
    const genuine = read(paths).cert.serialNumber
    await ids.setFault('cart', 'expired')
    const {cert, matches} = read(paths)
    expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now())
    expect(matches).toBe(true)
    await ids.setFault('cart', undefined)
    expect(read(paths).cert.serialNumber).toBe(genuine)
    ids.stop()
  })

  it('writes only for services that asked, and removes every key when closed', async () => {
    const {root, ids, files} = await setUp()
    await files.ensure('cart')
    await ids.certificate('api')
    expect(existsSync(join(root, 'certs', 'api'))).toBe(false)
    files.close()
    expect(existsSync(join(root, 'certs'))).toBe(false)
    ids.stop()
  })

  it('starts from nothing: files a killed run left behind are removed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'workload-files-stale-'))
    mkdirSync(join(root, 'certs', 'gone'), {recursive: true})
    writeFileSync(join(root, 'certs', 'gone', 'key.pem'), 'old key')
    const ids = await WorkloadIdentities.start({caDir: join(root, 'ca'), trustDomain: 'cluster.local', mesh: 'shop', certTtlMs: TTL, clock: new VirtualClock(0, Date.now())})
    new WorkloadFiles(join(root, 'certs'), ids)
    expect(existsSync(join(root, 'certs', 'gone'))).toBe(false)
    ids.stop()
  })
})
