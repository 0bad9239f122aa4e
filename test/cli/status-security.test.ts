// `mesh status` says each service's mTLS mode and how each of its calls travels.
import {describe, expect, it} from 'vitest'
import {renderStatus} from '../../src/commands/status.js'
import {describeSecurity, edgeSecurity, type MeshStatus, type ServiceStatus} from '../../src/sim/control/status.js'

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')
const service = (name: string, dependsOn: string[], security?: ServiceStatus['security']): ServiceStatus => ({
  name,
  dependsOn,
  versions: [{name: 'v1', replicas: 1, weight: 100}],
  panic: false,
  faults: [],
  instances: [],
  ...(security ? {security} : {}),
})
const mesh = (services: ServiceStatus[]): MeshStatus => ({
  name: 'shop', configFile: '/tmp/mesh.yaml', phase: 'running', daemonPid: 1, controlUrl: 'http://127.0.0.1:1', startedAt: '2025-01-01T00:00:00Z', services,
})

describe('security in mesh status', () => {
  it('an edge is mutual TLS when the callee\'s instances are reached with ISTIO_MUTUAL or MUTUAL', () => {
    expect(edgeSecurity({mtls: 'STRICT', tls: 'ISTIO_MUTUAL'})).toBe('mutual_tls')
    expect(edgeSecurity({tls: 'MUTUAL'})).toBe('mutual_tls')
    expect(edgeSecurity({tls: 'SIMPLE'})).toBe('tls')
    // STRICT alone guards the published address; the hop from the callers' sidecars stays in the daemon.
    expect(edgeSecurity({mtls: 'STRICT', tls: 'DISABLE'})).toBe('none')
    expect(edgeSecurity(undefined)).toBe('none')
    expect(describeSecurity({tls: 'DISABLE'})).toBeUndefined()
  })

  it('lists each service\'s mode and its calls\' security, and nothing for a mesh without any', () => {
    const text = plain(
      renderStatus(
        mesh([
          service('web', ['api', 'ext'], {mtls: 'PERMISSIVE', tls: 'DISABLE'}),
          service('api', [], {mtls: 'STRICT', tls: 'ISTIO_MUTUAL'}),
          service('ext', [], {mtls: 'PERMISSIVE', tls: 'SIMPLE'}),
        ]),
      ),
    )
    expect(text).toContain('web: mTLS PERMISSIVE, plaintext to its instances; calls → api mutual_tls, → ext tls')
    expect(text).toContain('ext: mTLS PERMISSIVE, SIMPLE to its instances')
    expect(text).toContain('api: mTLS STRICT, ISTIO_MUTUAL to its instances')
    expect(plain(renderStatus(mesh([service('web', ['api']), service('api', [])])))).not.toMatch(/mTLS|plaintext/)
    // Istio's defaults, which every mesh has, go unsaid.
    const defaults = {mtls: 'PERMISSIVE', tls: 'DISABLE'} as const
    expect(plain(renderStatus(mesh([service('web', ['api'], defaults), service('api', [], defaults)])))).not.toMatch(/mTLS|plaintext/)
  })
})
