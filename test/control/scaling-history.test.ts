// The autoscaler's decisions and failed starts kept apart from the daemon's event log, so
// `mesh history SERVICE` can list them however busy the log is, and `mesh status` says a
// failed scale-up while the service is still short of instances.
import {describe, expect, it} from 'vitest'
import {renderScaling} from '../../src/commands/history.js'
import {renderStatus} from '../../src/commands/status.js'
import {MeshEventLog, ScalingHistory, type ScalingRecord} from '../../src/sim/control/scaling-history.js'
import type {MeshStatus, ServiceStatus} from '../../src/sim/control/status.js'
import type {ScaleFailedEvent, ScalingEvent, ScalingStatus} from '../../src/sim/scaling/autoscaler.js'

type AnyEvent = {kind: string; service?: string; instance?: string}
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')
const T = Date.parse('2026-12-07T12:00:00Z')

const scaled = (service: string, from: number, to: number, panic = false): ScalingEvent => ({
  kind: 'scaled', service, version: 'v1', from, to, panic, reason: `${panic ? 'panic' : 'stable'}, observed 41 concurrent over 0.6 s, target 7`,
  message: `${from} → ${to}: …`,
})
const scaleFailed = (service: string, error: Error): ScaleFailedEvent => ({kind: 'scale-failed', service, version: 'v1', reason: error.message, message: `scale-up from 1 failed: ${error.message}`})
const status = (over: Partial<ScalingStatus>): ScalingStatus => ({version: 'v1', desired: 1, actual: 1, panic: false, ...over})

describe('MeshEventLog: scaling kept apart', () => {
  it('keeps every scaling event of a service when the shared ring has long dropped them', () => {
    const log = new MeshEventLog<AnyEvent | ScalingRecord>(10)
    log.push(scaled('catalog', 1, 5, true), T)
    log.push(scaleFailed('catalog', new Error('catalog-v1-3 did not become healthy within 60s')), T + 1000)
    for (let i = 0; i < 50; i++) log.push({kind: 'instance-healthy', service: 'web', instance: `web-v1-${i}`}, T + 2000 + i)
    log.push(scaled('search', 1, 2), T + 3000)
    log.push(scaled('catalog', 5, 1), T + 4000)
    expect(log.since(0).some((e) => e.event.kind === 'scaled' && e.event.service === 'catalog' && (e.event as ScalingEvent).to === 5)).toBe(false)
    const catalog = log.scaling.of('catalog')
    expect(catalog.map((r) => [r.seq, r.at, r.event.kind])).toEqual([
      [1, '2026-12-07T12:00:00.000Z', 'scaled'],
      [2, '2026-12-07T12:00:01.000Z', 'scale-failed'],
      [54, '2026-12-07T12:00:04.000Z', 'scaled'],
    ])
        // Every service's, in the order they happened; an unknown name has none.
    expect(log.scaling.of().map((r) => `${r.event.service}#${r.seq}`)).toEqual(['catalog#1', 'catalog#2', 'search#53', 'catalog#54'])
    expect(log.scaling.of('nosuch')).toEqual([])
  })

  it('is bounded per service: the oldest go first, another service keeps its own', () => {
    const h = new ScalingHistory(3)
    let seq = 0
    const record = (e: ScalingRecord) => h.record({seq: ++seq, at: new Date(T + seq).toISOString(), event: e})
    record(scaled('quiet', 1, 2))
    for (let i = 1; i <= 10; i++) record(scaled('busy', i, i + 1))
    expect(h.of('busy').map((r) => (r.event as ScalingEvent).from)).toEqual([8, 9, 10])
    expect(h.of('quiet')).toHaveLength(1)
  })

  it('a failed scale-up matters while the service is short of what the autoscaler wants', () => {
    const h = new ScalingHistory()
    h.record({seq: 1, at: '2026-12-07T12:00:01.000Z', event: scaleFailed('catalog', new Error('exited with code 1'))})
    h.record({seq: 2, at: '2026-12-07T12:00:02.000Z', event: scaled('catalog', 1, 3)})
    // The retry is under way: still short, the failure still says why.
    expect(h.unresolvedFailure('catalog', [status({desired: 3, actual: 1})])?.event.reason).toBe('exited with code 1')
    // It has them now, or wants fewer: history only.
    expect(h.unresolvedFailure('catalog', [status({desired: 3, actual: 3})])).toBeUndefined()
    expect(h.unresolvedFailure('catalog', undefined)).toBeUndefined()
    // Short, but never failed.
    expect(h.unresolvedFailure('search', [status({desired: 3, actual: 1})])).toBeUndefined()
  })
})

describe('mesh history and mesh status show them', () => {
  it('renderScaling: one line per decision, from → to, panic, reason; a failure says failed and why', () => {
    const text = plain(
      renderScaling([
        {seq: 1, at: '2026-12-07T12:00:03.000Z', event: scaled('catalog', 1, 5, true)},
        {seq: 2, at: '2026-12-07T12:00:09.000Z', event: scaleFailed('catalog', new Error('catalog-v1-5 exited with code 1'))},
        {seq: 3, at: '2026-12-07T12:01:10.000Z', event: scaled('catalog', 5, 1)},
        {seq: 4, at: '2026-12-07T12:02:00.000Z', event: {...scaled('catalog', 0, 1), reason: '1 request waiting', coldStartMs: 840}},
      ]),
    )
    expect(text.split('\n')).toEqual([
      'TIME      SERVICE  VERSION  SCALED  PANIC  REASON',
      '12:00:03  catalog  v1       1 → 5   panic  panic, observed 41 concurrent over 0.6 s, target 7',
      '12:00:09  catalog  v1       failed  -      catalog-v1-5 exited with code 1',
      '12:01:10  catalog  v1       5 → 1   -      stable, observed 41 concurrent over 0.6 s, target 7',
      '12:02:00  catalog  v1       0 → 1   -      1 request waiting (cold start 840 ms)',
    ])
  })

  it('renderStatus: a line for a failed scale-up, none without one', () => {
    const svc = (over: Partial<ServiceStatus>): ServiceStatus => ({
      name: 'catalog', dependsOn: [], versions: [{name: 'v1', replicas: 1, weight: 100}], panic: false, faults: [], instances: [],
      scaling: [status({desired: 3, actual: 1})], ...over,
    })
    const mesh = (s: ServiceStatus): MeshStatus => ({name: 'm', configFile: '/tmp/mesh.yaml', phase: 'running', daemonPid: 1, controlUrl: 'http://127.0.0.1:1', startedAt: '2026-12-07T12:00:00Z', services: [s]})
    const failed = plain(renderStatus(mesh(svc({scaleFailed: {version: 'v1', reason: 'catalog-v1-1 exited with code 1', at: '2026-12-07T12:00:09.000Z'}}))))
    expect(failed).toContain('catalog: scale-up failed at 12:00:09: catalog-v1-1 exited with code 1 (the autoscaler retries; `mesh logs catalog` says more)')
    expect(plain(renderStatus(mesh(svc({}))))).not.toContain('failed')
  })
})
