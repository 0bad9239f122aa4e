import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {parsed, problems, yaml} from './helpers.js'

const TMP = mkdtempSync(path.join(os.tmpdir(), 'meshsim-ingress-tls-'))
const file = (name: string) => path.join(TMP, name)
const mesh = (...tls: string[]) => yaml('name: shop', 'ingress:', '  port: 8080', ...tls, 'services:', '  api:', '    simulate: {}')

beforeAll(async () => {
  const ca = await MeshCA.create('cluster.local')
  const now = new Date()
  const a = await ca.issue({dnsNames: ['localhost'], ttlMs: 3600_000, now, commonName: 'a'})
  const b = await ca.issue({dnsNames: ['localhost'], ttlMs: 3600_000, now, commonName: 'b'})
  const old = await ca.issue({dnsNames: ['localhost'], ttlMs: 3600_000, now: new Date(now.getTime() - 2 * 3600_000), commonName: 'old'})
  writeFileSync(file('old.crt'), old.certPem)
  writeFileSync(file('old.key'), old.keyPem)
  writeFileSync(file('a.crt'), a.certPem)
  writeFileSync(file('a.key'), a.keyPem)
  writeFileSync(file('b.key'), b.keyPem)
  writeFileSync(file('garbage.crt'), 'not a certificate\n')
  writeFileSync(file('locked.key'), a.keyPem)
  chmodSync(file('locked.key'), 0o000)
})

afterAll(() => rmSync(TMP, {recursive: true, force: true}))

describe('ingress.tls', () => {
  it('takes a port, with the mesh CA\'s certificate by default, and redirect', () => {
    expect(parsed(mesh('  tls: {port: 8443, redirect: true}')).ingress?.tls).toEqual({port: 8443, redirect: true})
    expect(parsed(mesh('  tls: {port: 8443}')).ingress?.tls).toEqual({port: 8443})
  })

  it('takes a certificate and key of the user\'s own, as absolute paths', () => {
    expect(parsed(mesh(`  tls: {port: 8443, cert: ${file('a.crt')}, key: ${file('a.key')}}`)).ingress?.tls).toEqual({port: 8443, certFile: file('a.crt'), keyFile: file('a.key')})
  })

  it('names the field of a missing, unreadable or unparsable file, and of a key that is not the certificate\'s', () => {
    expect(problems(mesh(`  tls: {port: 8443, cert: ${file('none.crt')}, key: ${file('a.key')}}`))).toEqual([
      `mesh.yaml:4:27 ingress.tls.cert: ${file('none.crt')} does not exist (paths are relative to mesh.yaml)`,
    ])
    expect(problems(mesh(`  tls: {port: 8443, cert: ${file('garbage.crt')}, key: ${file('a.key')}}`))[0]).toMatch(
      new RegExp(`^mesh.yaml:4:27 ingress.tls.cert: ${file('garbage.crt')} is not a PEM certificate`),
    )
    if (process.getuid?.() !== 0) {
      expect(problems(mesh(`  tls: {port: 8443, cert: ${file('a.crt')}, key: ${file('locked.key')}}`))[0]).toMatch(/ingress.tls.key: cannot read .*locked.key: EACCES/)
    }
    const mismatch = problems(mesh(`  tls: {port: 8443, cert: ${file('a.crt')}, key: ${file('b.key')}}`))
    expect(mismatch).toHaveLength(1)
    expect(mismatch[0]).toMatch(new RegExp(`ingress.tls.key: ${file('b.key')} is not the private key of the certificate in ${file('a.crt')}`))
  })

  it('wants cert and key together, and a port other than the plain ingress\'s', () => {
    expect(problems(mesh(`  tls: {port: 8443, cert: ${file('a.crt')}}`))[0]).toMatch(/ingress.tls: ingress.tls needs both cert and key/)
    expect(problems(mesh('  tls: {port: 8080}'))).toEqual(['mesh.yaml:4:15 ingress.tls.port: the HTTPS ingress needs a port of its own: 8080 is ingress.port'])
    expect(problems(mesh('  tls: {port: 8443, redirect: yes}'))[0]).toMatch(/ingress.tls.redirect: expected/)
  })

  it('warns of a certificate of the user\'s that has expired, and still takes it', () => {
    const source = mesh(`  tls: {port: 8443, cert: ${file('old.crt')}, key: ${file('old.key')}}`)
    expect(problems(source)).toContainEqual(expect.stringMatching(/^mesh.yaml:4:27 ingress.tls.cert: warning: the certificate in .*old.crt expired on .*: clients will refuse it$/))
    expect(parsed(source).ingress?.tls?.certFile).toBe(file('old.crt'))
  })
})
