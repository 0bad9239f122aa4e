import {describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'
import type {InstanceStatus, MeshStatus} from '../../src/sim/control/status.js'
import {runWarmUp, WARM_UP_GRACE_MS, WarmUp, type WarmUpTarget, reachOf, warmUpTargets} from '../../src/sim/control/warm-up.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const YAML = `name: w
ingress:
  port: 0
  routes:
    - {prefix: /app, service: app, rewrite: /}
    - {prefix: /w, service: worker}
    - {prefix: /cat, service: catalog}
    - {prefix: /lim, service: limited}
services:
  app:
    command: node app.js
    dependsOn: [catalog, cart, db, worker]
    health: {path: /healthz}
  worker:
    command: node worker.js
    warmUp: {paths: [/w/jobs]}
  catalog:
    replicas: 2
    dependsOn: [inventory]
    simulate:
      latency: 5ms
      calls:
        - {service: inventory, path: /stock, probability: 0.5}
        - {service: inventory, path: /stock, probability: 0.2}
        - {service: inventory, path: /reserve, method: POST}
  inventory:
    simulate: {latency: 1ms}
  cart:
    simulate: {latency: 1ms}
    scaling: {minScale: 0, maxScale: 2}
  db:
    address: 127.0.0.1:5432
  limited:
    simulate: {latency: 1ms}
    policy:
      rateLimit: {rate: 5/s}
`

function config(): MeshConfig {
  const {config, issues} = parseConfig(YAML, '/tmp/warm/mesh.yaml', {})
  expect(issues.filter((i) => i.severity === 'error')).toEqual([])
  return config!
}

function instance(service: string, n: number, kind: InstanceStatus['kind'], deps: string[], health: InstanceStatus['health'] = 'healthy'): InstanceStatus {
  const name = `${service}-v1-${n}`
  return {
    instance: name,
    service,
    version: 'v1',
    kind,
    address: '127.0.0.1:1',
    inboundAddress: '127.0.0.1:2',
    outbound: {proxy: '127.0.0.1:3', dependencies: Object.fromEntries(deps.map((d, i) => [d, `127.0.0.1:${40_000 + n * 100 + i}`]))},
    state: 'running',
    health,
    registered: true,
    restarts: 0,
  }
}

function status(instances: InstanceStatus[]): MeshStatus {
  const names = [...new Set(instances.map((i) => i.service))]
  return {
    name: 'w',
    configFile: '/tmp/warm/mesh.yaml',
    phase: 'running',
    daemonPid: 1,
    controlUrl: 'http://127.0.0.1:9',
    ingress: {url: 'http://127.0.0.1:8000', routes: []},
    startedAt: new Date(0).toISOString(),
    services: names.map((name) => ({name, instances: instances.filter((i) => i.service === name)}) as MeshStatus['services'][number]),
  }
}

const target = (edge: string): WarmUpTarget => ({edge, url: 'http://127.0.0.1:1', path: '/', method: 'GET'})

describe('warmUpTargets', () => {
  const c = config()
  const s = status([
    instance('app', 0, 'command', ['catalog', 'cart', 'db', 'worker']),
    instance('catalog', 0, 'simulate', ['inventory']),
    instance('catalog', 1, 'simulate', ['inventory']),
    instance('inventory', 0, 'simulate', []),
  ])

  test('every caller instance → callee and ingress route: a simulated callee at the paths its caller declares (once each), a command one at its health path and its warmUp paths only', () => {
    const targets = warmUpTargets(c, s)
    expect(targets.map((t) => t.edge)).toEqual([
      'ingress /app/healthz → app',
      'ingress /w/jobs → worker',
      'ingress /cat → catalog',
      'app-v1-0 → catalog',
      'app-v1-0 → worker GET /w/jobs',
      'catalog-v1-0 → inventory GET /stock',
      'catalog-v1-0 → inventory POST /reserve',
      'catalog-v1-1 → inventory GET /stock',
      'catalog-v1-1 → inventory POST /reserve',
    ])
    const reserve = targets.find((t) => t.edge === 'catalog-v1-1 → inventory POST /reserve')!
    expect(reserve).toEqual({edge: reserve.edge, url: 'http://127.0.0.1:40100', path: '/reserve', method: 'POST'})
    expect(targets[2]).toMatchObject({url: 'http://127.0.0.1:8000', path: '/cat', method: 'GET'})
    expect(targets.find((t) => t.edge === 'app-v1-0 → catalog')).toMatchObject({url: 'http://127.0.0.1:40000', path: '/', method: 'GET'})
  })

  test('never an address, autoscaled or rate-limited service, nor a command one without a health path or warmUp paths; never from an instance that is not up', () => {
    const byName = new Map(c.services.map((x) => [x.name, x]))
    expect(['app', 'worker', 'db', 'cart', 'limited', 'inventory', 'catalog', 'nothing'].map((n) => reachOf(byName.get(n)))).toEqual([
      {paths: ['/healthz']}, {paths: ['/w/jobs']}, undefined, undefined, undefined, 'any', 'any', undefined,
    ])
    const unsafe = {...byName.get('worker')!, warmUpPaths: undefined}
    expect(reachOf(unsafe)).toBeUndefined()
    const starting = status([instance('catalog', 0, 'simulate', ['inventory'], 'starting'), instance('inventory', 0, 'simulate', [])])
    expect(warmUpTargets(c, starting).map((t) => t.edge)).toEqual(['ingress /app/healthz → app', 'ingress /w/jobs → worker', 'ingress /cat → catalog'])
  })

  test('warmUp is for a command: service; on a simulated one it is an error at its key', () => {
    const {issues} = parseConfig(YAML.replace('    simulate: {latency: 1ms}\n    scaling', '    simulate: {latency: 1ms}\n    warmUp: {paths: [/]}\n    scaling'), '/tmp/warm/mesh.yaml', {})
    expect(issues.filter((i) => i.severity === 'error').map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`)).toEqual([
      '30:5 services.cart.warmUp: warmUp names safe paths of a command: service; cart has none (a simulated one is warmed at the paths its callers call, an address: is never called)',
    ])
    expect(parseConfig(YAML.replace('[/w/jobs]', '[jobs]'), '/tmp/warm/mesh.yaml', {}).issues[0].message).toMatch(/a path starting with \//)
  })

  test('no ingress target when the ingress checks tokens', () => {
    const withJwt = {...c, ingress: {...c.ingress!, requestAuthentication: {} as never}}
    expect(warmUpTargets(withJwt, s).some((t) => t.edge.startsWith('ingress'))).toBe(false)
  })
})

describe('runWarmUp', () => {
  test('bounded by maxRequests, each target in turn, never more in flight than the concurrency', async () => {
    const clock = new VirtualClock()
    let inFlight = 0
    let most = 0
    const targets = [target('a'), target('b'), target('c')]
    const result = await runWarmUp(targets, {
      limits: {maxMs: 60_000, maxRequests: 10, concurrency: 4},
      clock,
      send: async () => {
        most = Math.max(most, ++inFlight)
        await Promise.resolve()
        inFlight--
        return 200
      },
    })
    expect(result).toMatchObject({requests: 10, failed: 0, byEdge: {a: 4, b: 3, c: 3}, aborted: false})
    expect(most).toBeLessThanOrEqual(4)
    expect(clock.pending()).toBe(0)
  })

  test('bounded in time: nothing is sent after maxMs, and what is in flight is cancelled after the grace', async () => {
    const clock = new VirtualClock()
    const seen: AbortSignal[] = []
    const done = runWarmUp([target('slow')], {
      limits: {maxMs: 100, maxRequests: 1_000, concurrency: 2},
      clock,
      // Each request takes 60 ms, but never ends before its signal does when it is the hung one.
      send: (t, signal) => {
        seen.push(signal)
        const hung = seen.length === 4
        return new Promise<number>((resolve, reject) => {
          if (!hung) clock.setTimer(60, () => resolve(200))
          signal.addEventListener('abort', () => reject(signal.reason), {once: true})
        })
      },
    })
    await clock.advance(100 + WARM_UP_GRACE_MS)
    const result = await done
    // Two workers: sent at 0 and 60 each; the one sent at 60 that hangs is cancelled at 1100, the other ended at 120.
    expect(result.requests).toBe(4)
    expect(result.failed).toBe(1)
    expect(result.ms).toBe(100 + WARM_UP_GRACE_MS)
    expect(result.aborted).toBe(false)
  })

  test('an abort (mesh down) stops at once: nothing more sent, in-flight cancelled, no timer left', async () => {
    const clock = new VirtualClock()
    const controller = new AbortController()
    let sent = 0
    const done = runWarmUp([target('a'), target('b')], {
      limits: {maxMs: 10_000, maxRequests: 1_000, concurrency: 3},
      clock,
      signal: controller.signal,
      send: (t, signal) => {
        sent++
        return new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true}))
      },
    })
    await Promise.resolve()
    controller.abort(new Error('the mesh is stopping'))
    const result = await done
    expect(sent).toBe(3)
    expect(result).toMatchObject({requests: 3, failed: 3, aborted: true, ms: 0})
    expect(clock.pending()).toBe(0)
  })

  test('nothing to warm, or already aborted: no request', async () => {
    const clock = new VirtualClock()
    const send = () => Promise.resolve(200)
    expect((await runWarmUp([], {limits: {maxMs: 10, maxRequests: 10, concurrency: 2}, clock, send})).requests).toBe(0)
    const aborted = AbortSignal.abort()
    expect(await runWarmUp([target('a')], {limits: {maxMs: 10, maxRequests: 10, concurrency: 2}, clock, send, signal: aborted})).toMatchObject({requests: 0, aborted: true})
  })
})

describe('WarmUp (the telemetry filter)', () => {
  const span = (traceId: string) => ({traceId}) as Span

  test('drops the spans of its own traces, passes every other; forgets its trace ids after a while', async () => {
    const clock = new VirtualClock()
    const recorded: string[] = []
    const warm = new WarmUp({record: (s) => recorded.push(s.traceId)}, clock, 5_000)
    const ids: string[] = []
    const result = await warm.run([target('a'), target('b')], {
      limits: {maxMs: 1_000, maxRequests: 5, concurrency: 2},
      send: async (t, traceparent) => {
        const id = traceparent.split('-')[1]
        ids.push(id)
        // The hops of the request record their spans while it is under way.
        warm.record(span(id))
        return 200
      },
    })
    expect(result.requests).toBe(5)
    expect(new Set(ids).size).toBe(5)
    warm.record(span('0af7651916cd43dd8448eb211c80319c'))
    // A late span of a warm-up trace (a hop's span ends after its reply).
    warm.record(span(ids[0]))
    expect(recorded).toEqual(['0af7651916cd43dd8448eb211c80319c'])
    expect(warm.remembered).toBe(5)
    await clock.advance(5_000)
    expect(warm.remembered).toBe(0)
  })

  test('abort() ends a run under way; close() leaves no timer and no id', async () => {
    const clock = new VirtualClock()
    const warm = new WarmUp({record: () => undefined}, clock)
    const done = warm.run([target('a')], {
      limits: {maxMs: 10_000, maxRequests: 100, concurrency: 2},
      send: (t, tp, signal) => new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), {once: true})),
    })
    await Promise.resolve()
    warm.close()
    expect(await done).toMatchObject({requests: 2, failed: 2, aborted: true})
    expect(warm.remembered).toBe(0)
    expect(clock.pending()).toBe(0)
  })
})
