// policy.tls at `mesh validate`: every certificate file is read then, so a missing or broken
// one, or a key that is not the certificate's, is an error at its field.
import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {parsed, problems, yaml} from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'tls-schema-'))
const file = (name: string) => join(dir, name)
// Service `s` at line 3; its policy.tls keys from line 7 on.
const withTls = (lines: string[], workload = 'address: 127.0.0.1:8443') =>
  yaml('name: shop', 'services:', '  s:', `    ${workload}`, '    policy:', '      tls:', ...lines.map((l) => `        ${l}`))

describe('policy.tls', () => {
  beforeAll(async () => {
    const ca = await MeshCA.create('cluster.local')
    const now = new Date()
    const a = await ca.issue({dnsNames: ['a.example'], ttlMs: 3600_000, now, commonName: 'a'})
    const b = await ca.issue({dnsNames: ['b.example'], ttlMs: 3600_000, now, commonName: 'b'})
    writeFileSync(file('ca.pem'), ca.certPem)
    writeFileSync(file('a.pem'), a.certPem)
    writeFileSync(file('a.key'), a.keyPem)
    writeFileSync(file('b.key'), b.keyPem)
    writeFileSync(file('junk.pem'), 'not a certificate\n')
    writeFileSync(file('locked.pem'), ca.certPem)
    chmodSync(file('locked.pem'), 0o000)
  })

  it('takes Istio\'s fields, with the files as absolute paths', () => {
    const s = parsed(withTls(['mode: MUTUAL', `caCertificates: ${file('ca.pem')}`, `clientCertificate: ${file('a.pem')}`, `privateKey: ${file('a.key')}`, 'sni: a.example', 'subjectAltNames: [a.example]'])).services[0]
    expect(s.policy.tls).toEqual({mode: 'MUTUAL', sni: 'a.example', subjectAltNames: ['a.example'], caCertificates: file('ca.pem'), clientCertificate: file('a.pem'), privateKey: file('a.key')})
    expect(parsed(withTls(['mode: ISTIO_MUTUAL'], 'command: ./serve')).services[0].policy.tls).toEqual({mode: 'ISTIO_MUTUAL'})
  })

  it('names the field of a missing, unreadable or non-PEM file', () => {
    expect(problems(withTls(['mode: SIMPLE', `caCertificates: ${file('nope.pem')}`]))).toEqual([
      `mesh.yaml:8:25 services.s.policy.tls.caCertificates: ${file('nope.pem')} does not exist (paths are relative to mesh.yaml)`,
    ])
    expect(problems(withTls(['mode: SIMPLE', `caCertificates: ${file('junk.pem')}`]))[0]).toContain(`services.s.policy.tls.caCertificates: ${file('junk.pem')} is not a PEM certificate`)
    // root reads every file: an unreadable one can only be shown to other users.
    if (process.getuid?.() !== 0) expect(problems(withTls(['mode: SIMPLE', `caCertificates: ${file('locked.pem')}`]))[0]).toContain(`cannot read ${file('locked.pem')}: EACCES`)
    expect(problems(withTls(['mode: MUTUAL', `clientCertificate: ${file('a.pem')}`, `privateKey: ${file('a.pem')}`]))[0]).toContain('services.s.policy.tls.privateKey: ')
  })

  it('refuses a private key that is not the certificate\'s', () => {
    expect(problems(withTls(['mode: MUTUAL', `clientCertificate: ${file('a.pem')}`, `privateKey: ${file('b.key')}`]))).toEqual([
      `mesh.yaml:9:21 services.s.policy.tls.privateKey: ${file('b.key')} is not the private key of clientCertificate ${file('a.pem')}`,
    ])
  })

  it('holds each mode to what it takes', () => {
    expect(problems(withTls(['mode: MUTUAL', `clientCertificate: ${file('a.pem')}`]))).toEqual([
      'mesh.yaml:7:9 services.s.policy.tls: mode: MUTUAL needs privateKey (and the other of clientCertificate, privateKey)',
    ])
    expect(problems(withTls(['mode: ISTIO_MUTUAL', `caCertificates: ${file('ca.pem')}`]))).toEqual([
      'mesh.yaml:8:9 services.s.policy.tls.caCertificates: ISTIO_MUTUAL takes no caCertificates: the mesh presents its own certificates and trusts its CA',
    ])
    expect(problems(withTls(['mode: SIMPLE', `privateKey: ${file('a.key')}`]))).toEqual([
      'mesh.yaml:8:9 services.s.policy.tls.privateKey: SIMPLE presents no client certificate; use mode: MUTUAL to present privateKey',
    ])
    expect(problems(withTls(['mode: STRICT']))[0]).toBe('mesh.yaml:7:15 services.s.policy.tls.mode: expected one of ISTIO_MUTUAL, MUTUAL, SIMPLE, DISABLE, got "STRICT"')
  })

  it('refuses TLS to a simulated service, which serves plaintext', () => {
    expect(problems(withTls(['mode: ISTIO_MUTUAL'], 'simulate: {}'))).toEqual([
      'mesh.yaml:6:7 services.s.policy.tls: a simulated service serves plaintext HTTP; policy.tls mode ISTIO_MUTUAL needs command: or address: (an instance that serves TLS)',
    ])
    expect(problems(withTls(['mode: DISABLE'], 'simulate: {}'))).toEqual([])
  })
})

describe('mesh validate: STRICT callees of callers without a certificate', () => {
  const legacy = (...lines: string[]) =>
    yaml('name: shop', ...lines, 'services:', '  legacy:', '    address: 127.0.0.1:9000', '    dependsOn: [api, web]', '  api:', '    command: ./api', '    policy: {mtls: STRICT}', '  web:', '    command: ./web')

  it('warns at the dependsOn entry when an address: service calls a STRICT service', () => {
    expect(problems(legacy())).toEqual([
      'mesh.yaml:5:17 services.legacy.dependsOn[0]: warning: "legacy" is an address: service, which the mesh gives no certificate, but "api" is STRICT (services.api.policy.mtls): ' +
        'its published address refuses a caller without a mesh certificate, so these calls fail the TLS handshake. Set "api"\'s policy.mtls to PERMISSIVE (Istio\'s mode for moving to mTLS) while "legacy" cannot present one.',
    ])
    // Mesh-wide STRICT: both callees, named by security.mtls.
    const both = problems(legacy('security: {mtls: STRICT}'))
    expect(both.map((p) => p.split(': warning')[0])).toEqual(['mesh.yaml:6:17 services.legacy.dependsOn[0]', 'mesh.yaml:6:22 services.legacy.dependsOn[1]'])
    expect(both[1]).toContain('"web" is STRICT (security.mtls)')
  })

  it('says nothing under PERMISSIVE, or when the caller is a process the mesh starts', () => {
    const permissive = yaml('name: shop', 'security: {mtls: PERMISSIVE}', 'services:', '  legacy:', '    address: 127.0.0.1:9000', '    dependsOn: [api]', '  api:', '    command: ./api')
    expect(problems(permissive)).toEqual([])
    expect(problems(yaml('name: shop', 'security: {mtls: STRICT}', 'services:', '  app:', '    command: ./app', '    dependsOn: [api]', '  api:', '    command: ./api'))).toEqual([])
  })
})
