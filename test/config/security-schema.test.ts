import {describe, expect, it} from 'vitest'
import {mtlsModeOf, securityOf} from '../../src/sim/config/security-schema.js'
import {parsed, problems, yaml} from './helpers.js'

const mesh = (...security: string[]) => yaml('name: shop', ...security, 'services:', '  api:', '    simulate: {}', '  db:', '    simulate: {}', '    policy: {mtls: DISABLE}')

describe('security:', () => {
  it('defaults to Istio\'s: trust domain cluster.local, 24h certificates, PERMISSIVE mTLS', () => {
    const config = parsed(mesh())
    expect(config.security).toBeUndefined()
    expect(securityOf(config)).toEqual({trustDomain: 'cluster.local', certTtlMs: 24 * 3600_000, mtls: 'PERMISSIVE'})
    expect(mtlsModeOf(config, 'api')).toBe('PERMISSIVE')
    expect(mtlsModeOf(config, 'db')).toBe('DISABLE')
  })

  it('reads what is written, and a service\'s policy.mtls overrides the mesh\'s', () => {
    const config = parsed(mesh('security:', '  trustDomain: example.org', '  certTTL: 1h', '  mtls: STRICT'))
    expect(config.security).toEqual({trustDomain: 'example.org', certTtlMs: 3600_000, mtls: 'STRICT'})
    expect(mtlsModeOf(config, 'api')).toBe('STRICT')
    expect(mtlsModeOf(config, 'db')).toBe('DISABLE')
    expect(parsed(mesh('security: {mtls: DISABLE}')).security).toEqual({trustDomain: 'cluster.local', certTtlMs: 24 * 3600_000, mtls: 'DISABLE'})
  })

  it('names each wrong value at its line and column', () => {
    expect(problems(mesh('security:', '  trustDomain: Cluster.Local', '  certTTL: 5s', '  mtls: strict', '  mTLS: STRICT'))).toEqual([
      'mesh.yaml:3:16 security.trustDomain: expected a trust domain of lowercase letters, digits, dots, dashes and underscores, like cluster.local, got "Cluster.Local"',
      'mesh.yaml:4:12 security.certTTL: expected a certificate lifetime from 10s to 2160h (90 days), like 24h, got "5s": certificates are rotated at half their life, and more often than every 5s is no test of anything',
      'mesh.yaml:5:9 security.mtls: expected one of STRICT, PERMISSIVE, DISABLE, got "strict"; did you mean "STRICT"?',
      'mesh.yaml:6:3 security.mTLS: unknown key "mTLS"; did you mean "mtls"?',
    ])
    expect(problems(mesh('security: {certTTL: 100d}'))[0]).toMatch(/^mesh.yaml:2:21 security.certTTL: expected a certificate lifetime/)
    expect(problems(mesh('security: {certTTL: 2400h}'))[0]).toMatch(/Istio allows at most 90 days/)
    expect(problems(mesh('security: {certTTL: 60}'))[0]).toMatch(/a duration needs a unit/)
    expect(problems(yaml('name: shop', 'services:', '  api:', '    simulate: {}', '    policy: {mtls: ON}'))).toEqual([
      'mesh.yaml:5:20 services.api.policy.mtls: expected one of STRICT, PERMISSIVE, DISABLE, got "ON"',
    ])
  })

  it('keeps the name ingress for the mesh\'s own ingress', () => {
    expect(problems(yaml('name: shop', 'services:', '  ingress:', '    simulate: {}'))).toEqual([
      'mesh.yaml:3:3 services.ingress: the service name "ingress" is taken by the mesh\'s own ingress (authorization rules name it as a caller; it has a certificate of its own); choose another, such as gateway',
    ])
  })

  it('lets a protocol: tcp service choose its mTLS mode too', () => {
    const config = parsed(yaml('name: shop', 'services:', '  db:', '    address: "127.0.0.1:5432"', '    protocol: tcp', '    policy: {mtls: STRICT}'))
    expect(mtlsModeOf(config, 'db')).toBe('STRICT')
  })
})
