// The frame `mesh top --once` prints, from a fixed model: every pane is there, the
// numbers read as a person expects, and no line is wider than the terminal.
import {describe, expect, test} from 'vitest'
import type {MeshStatus, ServiceStatus} from '../../src/sim/control/status.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {type AnyEvent, buildModel, describeEvent, renderFrame, renderTopology, type TopModel} from '../../src/sim/ui/snapshot.js'

const AT = Date.parse('2025-01-01T12:00:30Z')
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g
const plain = (s: string) => s.replace(ANSI, '')

function service(name: string, dependsOn: string[], opts: Partial<ServiceStatus> & {replicas?: number; unhealthy?: number} = {}): ServiceStatus {
  const replicas = opts.replicas ?? 1
  const versions = opts.versions ?? [{name: 'v1', replicas, weight: 100}]
  const instances = versions.flatMap((v) =>
    Array.from({length: v.replicas}, (_, i) => ({
      instance: `${name}-${v.name}-${i}`,
      service: name,
      version: v.name,
      kind: 'simulate' as const,
      address: '127.0.0.1:1',
      inboundAddress: '127.0.0.1:2',
      state: 'running',
      health: (i < (opts.unhealthy ?? 0) ? 'unhealthy' : 'healthy') as 'healthy' | 'unhealthy',
      registered: true,
      restarts: 0,
    })),
  )
  return {name, dependsOn, versions, panic: false, faults: opts.faults ?? [], instances}
}

const status: MeshStatus = {
  name: 'shop',
  configFile: '/tmp/mesh.yaml',
  phase: 'running',
  daemonPid: 1,
  controlUrl: 'http://127.0.0.1:1',
  ingress: {url: 'http://127.0.0.1:8000', routes: [{prefix: '/', service: 'frontend'}]},
  startedAt: '2025-01-01T12:00:00Z',
  services: [
    service('frontend', ['catalog', 'cart']),
    service('catalog', ['inventory', 'recommendations'], {replicas: 2}),
    service('cart', ['payments']),
    service('inventory', []),
    service('payments', [], {faults: ['f1 abort 503 30%'], unhealthy: 1, replicas: 2}),
    service('recommendations', [], {versions: [{name: 'v1', replicas: 1, weight: 90}, {name: 'v2', replicas: 1, weight: 10}]}),
  ],
}

const row = (over: Partial<StatRow>): StatRow => ({
  requests: 100, rps: 10, successRate: 1, actualRequests: 100, actualSuccessRate: 1, p50: 12, p95: 40, p99: 80, ...over,
})

const serviceStats: StatRow[] = [
  row({service: 'frontend', rps: 50, requests: 500}),
  row({service: 'catalog', rps: 50, requests: 500}),
  row({service: 'cart', rps: 50, requests: 500, successRate: 0.97}),
  row({service: 'inventory', rps: 25, requests: 250}),
  row({service: 'payments', rps: 10, requests: 100, successRate: 0.7, p50: 31, p99: 210}),
  row({service: 'recommendations', rps: 15, requests: 150}),
]
const edgeStats: StatRow[] = [
  row({source: 'ingress', destination: 'frontend', rps: 50}),
  row({source: 'frontend', destination: 'catalog', rps: 50}),
  row({source: 'frontend', destination: 'cart', rps: 50, successRate: 0.97}),
  row({source: 'catalog', destination: 'inventory', rps: 25}),
  row({source: 'catalog', destination: 'recommendations', rps: 15}),
  row({source: 'cart', destination: 'payments', rps: 10, successRate: 0.7}),
]

function trace(id: string, startMs: number, durationMs: number, status = 200, errorSpans = 0): TraceSummary {
  return {
    traceId: id.padEnd(32, '0'),
    root: {service: 'frontend', method: 'GET', path: '/checkout'}, entry: 'frontend', complete: true,
    startMs, durationMs, spanCount: 6, services: ['frontend', 'payments', 'cart'], status, error: status >= 500, errorSpans,
  }
}
const traces: TraceSummary[] = [
  ...Array.from({length: 20}, (_, i) => trace(`a${String(i).padStart(2, '0')}`, AT - 20_000 + i * 500, 20 + i)),
  trace('bad1', AT - 3000, 15, 503, 1),
  trace('slow1', AT - 2000, 900),
]
const events: AnyEvent[] = [
  {seq: 1, at: '2025-01-01T12:00:01Z', event: {kind: 'instance-healthy', instance: 'payments-v1-0', service: 'payments'}},
  {seq: 2, at: '2025-01-01T12:00:10Z', event: {kind: 'instance-exited', instance: 'payments-v1-1', service: 'payments', code: 1, signal: null}},
  {seq: 3, at: '2025-01-01T12:00:20Z', event: {kind: 'fault-added', service: 'payments', fault: 'abort 503', id: 'f1'}},
]

export const model: TopModel = buildModel({status, serviceStats, edgeStats, traces, events, windowMs: 10_000, now: AT})

describe('the view model', () => {
  test('joins status and stats per service', () => {
    const payments = model.services.find((s) => s.name === 'payments')!
    expect(payments).toMatchObject({healthy: 1, total: 2, rps: 10, successRate: 0.7, faults: ['f1 abort 503 30%']})
    expect(model.roots).toEqual(['frontend'])
    expect(model.edges).toContainEqual(expect.objectContaining({from: 'cart', to: 'payments', rps: 10, successRate: 0.7}))
  })

  test('says each service\'s mTLS mode and which edges are mutual TLS, and draws those edges double', () => {
    const secure: MeshStatus = {
      ...status,
      services: status.services.map((svc) =>
        svc.name === 'payments' ? {...svc, security: {mtls: 'STRICT', tls: 'ISTIO_MUTUAL'}} : {...svc, security: {mtls: 'PERMISSIVE', tls: 'DISABLE'}},
      ),
    }
    const m = buildModel({status: secure, serviceStats, edgeStats, traces, events, windowMs: 10_000, now: AT})
    expect(m.services.find((x) => x.name === 'payments')!.security).toBe('mTLS STRICT, ISTIO_MUTUAL to its instances')
    expect(m.services.find((x) => x.name === 'cart')!.security).toBe('mTLS PERMISSIVE, plaintext to its instances')
    expect(m.edges.filter((e) => e.mtls).map((e) => `${e.from}->${e.to}`)).toEqual(['cart->payments'])
    const topology = plain(renderTopology(m, {width: 120, height: 30, colour: false}).join('\n'))
    expect(topology).toMatch(/╚═+10\.0\/s▶│ +payments/)
    expect(topology.match(/[═║╔╗╚╝]/g)!.length).toBeGreaterThan(2)
    // The other edges stay single.
    expect(topology).toMatch(/└─+15\.0\/s▶/)
    expect(plain(renderTopology(model, {width: 120, height: 30, colour: false}).join('\n'))).not.toMatch(/[═║╔╗╚╝]/)
    // Without security, nothing is said of it.
    expect(model.services.every((x) => x.security === undefined)).toBe(true)
  })

  test('keeps failed traces and the slowest tenth, newest first', () => {
    expect(model.traces.map((t) => t.id.replace(/0+$/, ''))).toEqual(['slow1', 'bad1', 'a19', 'a18', 'a17'])
  })

  test('describes events in words, and events it does not know (deploy steps) generically', () => {
    expect(model.events.map((e) => e.text)).toEqual(['payments-v1-0 healthy', 'payments-v1-1 exited (code 1)', 'fault f1 on payments: abort 503'])
    expect(describeEvent({seq: 9, at: '2025-01-01T12:00:00Z', event: {kind: 'canary-step', service: 'recommendations', message: 'v2 at 25%'}}).text).toBe(
      'canary step recommendations v2 at 25%',
    )
  })
})

describe('renderFrame', () => {
  for (const [width, height] of [[120, 40], [80, 24], [200, 60]] as const) {
    test(`at ${width}×${height}: exactly ${height} lines, none wider than ${width}, with every pane`, () => {
      const frame = plain(renderFrame(model, {width, height, colour: false}))
      const lines = frame.split('\n')
      expect(lines).toHaveLength(height)
      for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(width)
      expect(frame).toContain('mesh shop')
      expect(frame).toMatch(/── topology/)
      expect(frame).toMatch(/── services \(6\)/)
      expect(frame).toMatch(/── slow or failed traces/)
      expect(lines[lines.length - 1]).toMatch(/^events: \d\d:\d\d:\d\d fault f1 on payments: abort 503/)
    })
  }

  test('the services table shows versions and weights, instances, rps, success, latency and faults', () => {
    const frame = renderFrame(model, {width: 120, height: 40, colour: false})
    const line = (name: string) => frame.split('\n').find((l) => l.startsWith(`  ${name} `))!
    expect(line('payments')).toMatch(/payments\s+v1\s+1\/2\s+10\.0\s+70\.0%\s+31\.0ms\s+210\.0ms\s+-\s+f1 abort 503 30%/)
    expect(line('recommendations')).toMatch(/v1:90 v2:10/)
    expect(line('frontend')).toMatch(/50\.0\s+100%/)
  })

  test('a protocol: tcp service shows its open connections instead of a request rate', () => {
    const db = {...service('db', []), tcp: {open: 3, opened: 40, sentBytes: 1, receivedBytes: 1}}
    const withDb = buildModel({status: {...status, services: [...status.services, db]}, serviceStats, edgeStats, traces, events, windowMs: 10_000, now: AT})
    const frame = renderFrame(withDb, {width: 120, height: 40, colour: false})
    expect(frame.split('\n').find((l) => l.startsWith('  db '))).toMatch(/^ {2}db\s+v1\s+1\/1\s+3 open\s+tcp\s+-\s+-\s+-\s+-\s*$/)
  })

  test('an autoscaled service gets a SCALE column: desired/actual, panic or a failed scale-up marked; none without one', () => {
    const scaledStatus: MeshStatus = {
      ...status,
      services: status.services.map((svc) =>
        svc.name === 'catalog'
          ? {...svc, scaling: [{version: 'v1', desired: 5, actual: 2, panic: true, reason: 'panic, observed 41 concurrent over 0.6 s, target 7'}]}
          : svc.name === 'cart'
            ? {...svc, scaling: [{version: 'v1', desired: 2, actual: 1, panic: false}], scaleFailed: {version: 'v1', reason: 'cart-v1-1 exited with code 1', at: '2025-01-01T12:00:20Z'}}
            : svc.name === 'recommendations'
              ? {...svc, scaling: [{version: 'v1', desired: 1, actual: 1, panic: false}, {version: 'v2', desired: 2, actual: 2, panic: false}]}
              : svc.name === 'inventory'
                ? {...svc, instances: [], scaling: [{version: 'v1', desired: 0, actual: 0, panic: false, scaledToZero: true}]}
                : svc,
      ),
    }
    const events: AnyEvent[] = [
      {seq: 1, at: '2025-01-01T12:00:10Z', event: {kind: 'scaled', service: 'catalog', version: 'v1', from: 2, to: 5, panic: true, reason: 'panic', message: '2 → 5: panic, observed 41 concurrent over 0.6 s, target 7'}},
      {seq: 2, at: '2025-01-01T12:00:20Z', event: {kind: 'scale-failed', service: 'cart', version: 'v1', reason: 'cart-v1-1 exited with code 1', message: 'scale-up from 1 failed: cart-v1-1 exited with code 1'}},
    ]
    const m = buildModel({status: scaledStatus, serviceStats, edgeStats, traces, events, windowMs: 10_000, now: AT})
    expect(m.services.find((x) => x.name === 'recommendations')!.scaling).toEqual({desired: 3, actual: 3, panic: false})
    expect(m.events.map((e) => [e.severity, e.text])).toEqual([
      ['warn', 'scaled catalog 2 → 5: panic, observed 41 concurrent over 0.6 s, target 7'],
      ['bad', 'cart scale-up from 1 failed: cart-v1-1 exited with code 1'],
    ])
    const lines = plain(renderFrame(m, {width: 120, height: 40, colour: false})).split('\n')
    const line = (name: string) => lines.find((l) => l.startsWith(`  ${name} `))!
    expect(lines.find((l) => l.includes('SERVICE'))).toMatch(/INST\s+SCALE\s+RPS/)
    expect(line('catalog')).toMatch(/catalog\s+v1\s+2\/2\s+5\/2 panic\s+50\.0/)
    expect(line('cart')).toMatch(/cart\s+v1\s+1\/1\s+2\/1 failed\s+50\.0/)
    expect(line('recommendations')).toMatch(/v1:90 v2:10\s+2\/2\s+3\/3\s+15\.0/)
    expect(line('frontend')).toMatch(/frontend\s+v1\s+1\/1\s+-\s+50\.0/)
    expect(line('inventory')).toMatch(/inventory\s+v1\s+0\/0\s+0\/0 idle\s+25\.0/)
    const coloured = renderFrame(m, {width: 120, height: 40, colour: true})
    expect(coloured).toContain('\x1b[33m5/2 panic')
    expect(coloured).toContain('\x1b[31m2/1 failed')
    // Without an autoscaled service the table is as it was.
    expect(renderFrame(model, {width: 120, height: 40, colour: false})).not.toContain('SCALE')
  })

  test('the traces pane lists failed and slow traces with status and duration', () => {
    const frame = renderFrame(model, {width: 120, height: 40, colour: false})
    expect(frame).toMatch(/✗ bad10000\s+3s\s+503\s+15\.0ms\s+GET \/checkout {2}frontend ▸ cart, payments/)
    expect(frame).toMatch(/slow1000\s+2s\s+200\s+900\.0ms/)
  })

  test('the topology shows every service and labels edges with rps', () => {
    const topo = renderTopology(model, {width: 120, height: 16, colour: false}).join('\n')
    for (const s of model.services) expect(topo).toContain(s.name)
    expect(topo).toContain('50.0/s')
    expect(topo).toContain('10.0/s▶')
    expect(topo).toMatch(/[▶]/)
  })

  test('colour: red edges below 95% success, no escape codes at all without colour', () => {
    const coloured = renderFrame(model, {width: 120, height: 40, colour: true})
    expect(coloured).toContain('\x1b[31m')
    expect(renderFrame(model, {width: 120, height: 40, colour: false})).not.toMatch(ANSI)
    for (const line of coloured.split('\n')) expect(plain(line).length).toBeLessThanOrEqual(120)
  })

  test('a selection marks the service row and its box; a filter narrows both tables', () => {
    const frame = renderFrame(model, {width: 120, height: 40, colour: false, view: {focus: 'services', service: 4, trace: 0}})
    expect(frame).toMatch(/▶ payments/)
    const filtered = renderFrame(model, {width: 120, height: 40, colour: false, view: {focus: 'services', service: 0, trace: 0, filter: 'pay'}})
    expect(filtered).toMatch(/services \(1 matching "pay"\)/)
    expect(filtered).not.toMatch(/^ {2}frontend /m)
  })

  test('without a height every section takes its natural size (--once when piped)', () => {
    const lines = plain(renderFrame(model, {width: 100, colour: false})).split('\n')
    for (const s of model.services) expect(lines.some((l) => l.startsWith(`  ${s.name} `))).toBe(true)
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100)
  })
})
