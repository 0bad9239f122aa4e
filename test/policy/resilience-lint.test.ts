import {describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {lintResilience} from '../../src/sim/config/resilience-lint.js'

function config(yaml: string): MeshConfig {
  const {config, issues} = parseConfig(yaml, '/tmp/lint/mesh.yaml')
  expect(issues.filter((i) => i.severity === 'error')).toEqual([])
  return config!
}

describe('resilience lint', () => {
  test('a calm mesh has no warnings', () => {
    const mesh = config(`
name: calm
ingress: {port: 0, routes: [{prefix: /, service: web}]}
services:
  web:
    dependsOn: [api]
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {timeout: 1s, retries: {attempts: 2, perTryTimeout: 300ms}}
  api:
    replicas: 3
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {outlierDetection: {maxEjectionPercent: 50}}
`)
    expect(lintResilience(mesh)).toEqual([])
  })

  test('retries on a gRPC service that name no gRPC status: its calls are POSTs and would never be replayed', () => {
    const mesh = config(`
name: g
services:
  ratings:
    protocol: grpc
    command: ./ratings
    policy: {retries: {attempts: 2, on: [5xx, reset]}}
  reviews:
    protocol: grpc
    command: ./reviews
    policy: {retries: {attempts: 2, on: [unavailable, 5xx]}}
`)
    expect(lintResilience(mesh)).toEqual([
      {
        service: 'ratings',
        path: 'services.ratings.policy.retries.on',
        message:
          'ratings is protocol: grpc, and every gRPC call is a POST, which on: [5xx, reset] never replays (only a refused connection is retried). ' +
          'Name the gRPC statuses to retry, as Istio does: on: [unavailable] (or cancelled, deadline-exceeded, internal, resource-exhausted).',
      },
    ])
  })

  test('perTryTimeout × tries beyond the overall timeout, with the numbers', () => {
    const mesh = config(`
name: t
services:
  payments:
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {timeout: 1s, retries: {attempts: 3, perTryTimeout: 300ms}}
`)
    expect(lintResilience(mesh)).toEqual([
      {
        service: 'payments',
        path: 'services.payments.policy.retries',
        message:
          'perTryTimeout 300ms × 4 tries (1 + 3 retries) = 1.2s exceeds timeout 1s: only 3 full tries fit, so the last retries are cut short. ' +
          'Raise timeout to at least 1.2s or lower attempts or perTryTimeout.',
      },
    ])
  })

  test('a perTryTimeout longer than the timeout itself: it never applies, and the warning says so', () => {
    const mesh = config(`
name: t
services:
  payments:
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {timeout: 500ms, retries: {attempts: 2, perTryTimeout: 1s}}
`)
    expect(lintResilience(mesh).map((w) => w.message)).toEqual([
      'perTryTimeout 1s × 3 tries (1 + 2 retries) = 3s exceeds timeout 500ms: even the first try\'s perTryTimeout is longer than the timeout, ' +
        'so the timeout always fires first and perTryTimeout never applies. Raise timeout to at least 3s or lower attempts or perTryTimeout.',
    ])
  })

  test('retry amplification along the worst call path from the ingress', () => {
    const retries = 'policy: {retries: {attempts: 2}}'
    const mesh = config(`
name: amp
ingress: {port: 0, routes: [{prefix: /, service: frontend}]}
services:
  frontend:
    dependsOn: [catalog, cart]
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    ${retries}
  catalog:
    simulate: {latency: {p50: 5ms, p99: 20ms}, calls: [{service: db}]}
    ${retries}
  cart:
    dependsOn: [db]
    simulate: {latency: {p50: 5ms, p99: 20ms}}
  db:
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    ${retries}
`)
    const warnings = lintResilience(mesh)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({service: 'db', path: 'services.db.policy.retries'})
    expect(warnings[0].message).toMatch(/^frontend → catalog → db: up to 27 calls to db per user request \(3 × 3 × 3 tries\)/)
  })

  test('retries on a service a simulated caller calls with POST or PATCH', () => {
    const mesh = config(`
name: idem
services:
  checkout:
    simulate:
      latency: {p50: 5ms, p99: 20ms}
      calls: [{service: payments, method: POST, path: /charge}, {service: payments, method: GET, path: /status}]
  payments:
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {retries: {attempts: 2}}
`)
    const warnings = lintResilience(mesh)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({service: 'payments', path: 'services.payments.policy.retries'})
    expect(warnings[0].message).toContain('retries (attempts 2) are set for payments, but checkout calls it with POST /charge')
  })

  test('outlier detection that can eject every instance', () => {
    const mesh = config(`
name: od
services:
  single:
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {outlierDetection: {consecutive5xxErrors: 5}}
  all:
    replicas: 3
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {outlierDetection: {maxEjectionPercent: 100, baseEjectionTime: 30s}}
  fine:
    replicas: 3
    simulate: {latency: {p50: 5ms, p99: 20ms}}
    policy: {outlierDetection: {maxEjectionPercent: 100, consecutive5xxErrors: 0}}
`)
    const warnings = lintResilience(mesh)
    expect(warnings.map((w) => w.path)).toEqual(['services.single.policy.outlierDetection', 'services.all.policy.outlierDetection'])
    expect(warnings[0].message).toContain('single has 1 instance and one ejection is always allowed')
    expect(warnings[1].message).toContain('maxEjectionPercent 100 lets outlier detection eject all 3 instances of all for at least 30s')
  })

  test('the worst path wins even when a milder one reaches the service first; without an ingress, every service nobody calls is an entry point', () => {
    // a → b → d (2 × 1 × 2 = 4) is found before a → c → d (2 × 4 × 2 = 16).
    const mesh = config(`
name: dag
services:
  a: {dependsOn: [b, c], simulate: {}, policy: {retries: {attempts: 1}}}
  b: {dependsOn: [d], simulate: {}}
  c: {dependsOn: [d], simulate: {}, policy: {retries: {attempts: 3}}}
  d: {simulate: {}, policy: {retries: {attempts: 1}}}
  lone: {dependsOn: [x], simulate: {}, policy: {retries: {attempts: 4}}}
  x: {simulate: {}, policy: {retries: {attempts: 2}}}
`)
    const warnings = lintResilience(mesh).filter((w) => w.message.includes('calls to'))
    expect(warnings.map((w) => [w.path, w.message.split(' when')[0]])).toEqual([
      ['services.d.policy.retries', 'a → c → d: up to 16 calls to d per user request (2 × 4 × 2 tries)'],
      ['services.x.policy.retries', 'lone → x: up to 15 calls to x per user request (5 × 3 tries)'],
    ])
  })

  test('a path of more than 12 hops is shown by its entry point and its last 12; the warning is at the last hop with retries', () => {
    const lines = ['name: long', 'ingress: {port: 0, routes: [{prefix: /, service: s0}]}', 'services:']
    for (let i = 0; i < 20; i++) lines.push(`  s${i}: {simulate: {calls: [${i < 19 ? `{service: s${i + 1}}` : ''}]}${i % 2 === 0 ? ', policy: {retries: {attempts: 1}}' : ''}}`)
    const warnings = lintResilience(config(lines.join('\n') + '\n'))
    const last = warnings.find((w) => w.service === 's19')!
    expect(last.path).toBe('services.s18.policy.retries')
    expect(last.message.split(' when')[0]).toBe(
      's0 → … (7 more) → s8 → s9 → s10 → s11 → s12 → s13 → s14 → s15 → s16 → s17 → s18 → s19: up to 1024 calls to s19 per user request (… × 2 × 1 × 2 × 1 × 2 × 1 × 2 × 1 × 2 × 1 × 2 × 1 tries)',
    )
    // 13 hops: the entry point and the last 12, nothing hidden.
    expect(warnings.find((w) => w.service === 's12')!.message.split(':')[0]).toBe('s0 → s1 → s2 → s3 → s4 → s5 → s6 → s7 → s8 → s9 → s10 → s11 → s12')
    expect(warnings.find((w) => w.service === 's13')!.message.split(':')[0]).toBe('s0 → … (1 more) → s2 → s3 → s4 → s5 → s6 → s7 → s8 → s9 → s10 → s11 → s12 → s13')
  })

  test('a call cycle (the config checker rejects them, but the lint must not loop) ends the path', () => {
    const mesh = config(`
name: cyc
ingress: {port: 0, routes: [{prefix: /, service: a}]}
services:
  a: {dependsOn: [b], simulate: {latency: {p50: 5ms, p99: 20ms}}, policy: {retries: {attempts: 3}}}
  b: {simulate: {latency: {p50: 5ms, p99: 20ms}}, policy: {retries: {attempts: 3}}}
`)
    mesh.services[1].dependsOn = ['a']
    const warnings = lintResilience(mesh)
    expect(warnings.map((w) => w.message.split(':')[0])).toEqual(['a → b'])
    expect(warnings[0].message).toContain('up to 16 calls to b')
  })
})
