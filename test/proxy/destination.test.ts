// One destination over a fake leaf (no sockets) on a virtual clock: what `mesh apply` and a
// deploy's overlays keep of its policy state, and what it forgets when instances leave.
import {describe, expect, test} from 'vitest'
import type {PolicyConfig, ServiceConfig} from '../../src/sim/config/types.js'
import {type Endpoint, Registry} from '../../src/sim/proxy/registry.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import type {LeafProtocol} from '../../src/sim/proxy/leaf.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {callService, type Reply} from '../../src/sim/proxy/stack.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {callContext, meshRequest} from '../helpers/proxy-context.js'

const endpoint = (version: string, i: number): Endpoint => ({
  instance: `api-${version}-${i}`,
  service: 'api',
  version,
  host: '127.0.0.1',
  port: 1,
  inboundPort: 1,
  origin: 'http://127.0.0.1:1',
})

const basePolicy = (over: Partial<PolicyConfig> = {}): PolicyConfig => ({loadBalancer: {kind: 'round-robin'}, routes: [], ...over})

function service(policy: PolicyConfig, protocol?: 'grpc'): ServiceConfig {
  return {
    name: 'api',
    protocol,
    dependsOn: [],
    health: {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3},
    policy,
    versions: [],
    stopGracePeriodMs: 1000,
  } as unknown as ServiceConfig
}

/**
 * A destination whose leaf answers `status()` at once (or, with `hold`, keeps the reply for
 * the test to answer), recording which instance each attempt reached.
 */
function setup(policy: PolicyConfig, opts: {versions?: string[]; status?: () => number; hold?: boolean; protocol?: 'grpc'} = {}) {
  const clock = new VirtualClock()
  const registry = new Registry(['api'])
  for (const version of opts.versions ?? ['v1']) registry.add(endpoint(version, 0))
  const reached: string[] = []
  const held: Array<{instance: string; reply: Reply}> = []
  const protocols: LeafProtocol[] = []
  const weights = new Map([[(opts.versions ?? ['v1'])[0], 100]])
  const destination = new Destination(service(policy, opts.protocol), weights, {
    registry,
    faults: {faults: new FaultSet(clock), allowHeaders: () => false},
    clock,
    leaf: (protocol) => {
      protocols.push(protocol)
      return (_req, ctx, reply) => {
        const instance = ctx.endpoint!.instance
        reached.push(instance)
        if (opts.hold) return void held.push({instance, reply})
        reply.ok({status: opts.status?.() ?? 200, headers: [], body: null, endpoint: ctx.endpoint})
      }
    },
    sink: {record: () => undefined},
    seed: 1,
  })
  /** One request through the whole stack: its status (the mesh's own replies included). */
  const send = async (headers: Record<string, string> = {}): Promise<number> => {
    const answer = callService(destination.service, meshRequest({headers}), callContext(clock)).then(
      (r) => r.status,
      (e: unknown) => (e instanceof ProxyError ? e.status : Promise.reject(e)),
    )
    // Retry backoff sleeps on the clock.
    await clock.advance(10)
    return answer
  }
  const sendMany = async (n: number) => {
    const statuses: number[] = []
    for (let i = 0; i < n; i++) statuses.push(await send())
    return statuses
  }
  return {clock, registry, destination, reached, held, protocols, send, sendMany}
}

const tokenBucket = (burst: number): PolicyConfig['rateLimit'] => ({algorithm: 'token-bucket', requests: 1, periodMs: 1000, burst, perSource: false})

describe('mesh apply keeps state whose config did not change', () => {
  test('a token bucket: 5×200 + 3×429, an apply of the same policy, and the next requests are still 429', async () => {
    const {destination, sendMany} = setup(basePolicy({rateLimit: tokenBucket(5)}))
    expect(await sendMany(8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
    // Equal by value, not the same object: as `mesh apply` parses mesh.yaml afresh.
    destination.apply(basePolicy({rateLimit: tokenBucket(5)}))
    expect(await sendMany(3)).toEqual([429, 429, 429])
    // A changed limit is a new bucket.
    destination.apply(basePolicy({rateLimit: tokenBucket(6)}))
    expect(await sendMany(7)).toEqual([200, 200, 200, 200, 200, 200, 429])
  })

  test('per-consumer buckets: each key its own, kept by an apply of the same policy, counted in load()', async () => {
    const keyed = (): PolicyConfig['rateLimit'] => ({
      algorithm: 'fixed-window',
      requests: 1,
      periodMs: 60_000,
      burst: 1,
      perSource: false,
      key: {header: 'x-api-key'},
      tiers: {by: {header: 'x-plan'}, limits: {gold: {requests: 3, periodMs: 60_000, burst: 3}}},
      maxConsumers: 2,
    })
    const {destination, send} = setup(basePolicy({rateLimit: keyed()}))
    const as = async (key: string, n: number, plan = 'free') => {
      const statuses: number[] = []
      for (let i = 0; i < n; i++) statuses.push(await send({'x-api-key': key, 'x-plan': plan}))
      return statuses
    }
    expect(await as('alice', 2)).toEqual([200, 429])
    expect(await as('bob', 4, 'gold')).toEqual([200, 200, 200, 429])
    expect(destination.load().rateLimitConsumers).toBe(2)
    destination.apply(basePolicy({rateLimit: keyed()}))
    expect(await as('alice', 1)).toEqual([429])
    expect(await as('bob', 1, 'gold')).toEqual([429])
    // A third consumer: the cap of 2 drops the least recently used (alice), who then starts afresh.
    expect(await as('carol', 1)).toEqual([200])
    expect(destination.load().rateLimitConsumers).toBe(2)
    expect(await as('alice', 1)).toEqual([200])
  })

  test('a retry budget: once spent, an apply of the same policy does not refill it', async () => {
    // ratio 0 and 0.1/s over the 10 s window: one retry in all.
    const retries = {attempts: 2, on: ['5xx' as const], backoff: {baseMs: 1, maxMs: 1}, budget: {ratio: 0, minPerSecond: 0.1}}
    const {destination, reached, send} = setup(basePolicy({retries}), {status: () => 503})
    const attempts = async () => {
      const before = reached.length
      expect(await send()).toBe(503)
      return reached.length - before
    }
    expect(await attempts()).toBe(2)
    expect(await attempts()).toBe(1)
    destination.apply(basePolicy({retries: structuredClone(retries)}))
    expect(await attempts()).toBe(1)
    // Another budget is a new one.
    destination.apply(basePolicy({retries: {...retries, budget: {ratio: 0, minPerSecond: 0.2}}}))
    expect(await attempts()).toBe(3)
  })
})

describe('overlays (a deploy over mesh.yaml)', () => {
  const canary = (rule = {match: {headers: {'x-canary': 'true'}}, version: 'v2'}) => (p: PolicyConfig) => ({...p, routes: [rule, ...p.routes]})

  test("a canary's header route survives an apply; undo removes it and leaves the applied policy", async () => {
    const {destination, reached, send} = setup(basePolicy(), {versions: ['v1', 'v2']})
    const last = () => reached.at(-1)
    const undo = destination.overlay(canary())
    await send({'x-canary': 'true'})
    expect(last()).toBe('api-v2-0')
    destination.apply(basePolicy())
    await send({'x-canary': 'true'})
    expect(last()).toBe('api-v2-0')
    // An apply that changes the routes: its rules stay under the overlay's.
    destination.apply(basePolicy({routes: [{match: {headers: {'x-beta': '1'}}, version: 'v2'}]}))
    expect(destination.policy.routes.map((r) => Object.keys(r.match.headers ?? {})[0])).toEqual(['x-canary', 'x-beta'])
    undo()
    undo()
    expect(destination.policy.routes.map((r) => Object.keys(r.match.headers ?? {})[0])).toEqual(['x-beta'])
    await send({'x-canary': 'true'})
    expect(last()).toBe('api-v1-0')
    await send({'x-beta': '1'})
    expect(last()).toBe('api-v2-0')
  })

  test('undo removes exactly its own overlay; a mirror overlay gives way to the applied mirror when undone', () => {
    const {destination} = setup(basePolicy(), {versions: ['v1', 'v2']})
    const undoRoute = destination.overlay(canary())
    const undoMirror = destination.overlay((p) => ({...p, mirror: {version: 'v2', percent: 100}}))
    destination.apply(basePolicy({mirror: {version: 'v2', percent: 10}}))
    expect(destination.policy.mirror).toEqual({version: 'v2', percent: 100})
    undoRoute()
    expect(destination.policy.routes).toEqual([])
    expect(destination.policy.mirror).toEqual({version: 'v2', percent: 100})
    undoMirror()
    expect(destination.policy.mirror).toEqual({version: 'v2', percent: 10})
  })

  test('an overlay does not refill the token bucket either', async () => {
    const {destination, sendMany} = setup(basePolicy({rateLimit: tokenBucket(2)}), {versions: ['v1', 'v2']})
    expect(await sendMany(3)).toEqual([200, 200, 429])
    const undo = destination.overlay(canary())
    expect(await sendMany(1)).toEqual([429])
    undo()
    expect(await sendMany(1)).toEqual([429])
  })
})

describe('the leaf', () => {
  test('attempts reach the leaf the destination was given, for its protocol', async () => {
    const http = setup(basePolicy())
    expect(await http.send()).toBe(200)
    expect(http.protocols).toEqual(['http'])
    expect(http.reached).toEqual(['api-v1-0'])
    const grpc = setup(basePolicy(), {protocol: 'grpc'})
    expect(await grpc.send()).toBe(200)
    expect(grpc.protocols).toEqual(['grpc'])
  })
})

describe("the caller's identity", () => {
  test('authorization judges req.peer, not the telemetry source', async () => {
    const {destination, clock, reached} = setup(basePolicy({authorization: {allow: [{from: ['frontend']}]}}))
    const status = (peer: string) =>
      callService(destination.service, meshRequest({source: 'frontend', peer: {identity: peer, authn: 'listener'}}), callContext(clock)).then(
        (r) => r.status,
        (e: ProxyError) => e.status,
      )
    expect(await status('frontend')).toBe(200)
    expect(await status('batch')).toBe(403)
    expect(reached).toHaveLength(1)
  })
})

describe('instances that leave are forgotten', () => {
  const outlierDetection = {consecutive5xxErrors: 5, consecutiveGatewayErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50}

  test.each(['least-request', 'ewma', 'ring-hash'] as const)('%s: 1,000 instances created and removed leave only the live ones', async (kind) => {
    const {registry, destination, send} = setup(basePolicy({loadBalancer: {kind, hashOn: {header: 'x-user'}}, outlierDetection}))
    registry.add(endpoint('v1', 1))
    for (let i = 0; i < 1000; i++) {
      const e = endpoint('v1', 100 + i)
      registry.add(e)
      // Each takes some traffic, so the balancer has something to keep for it.
      await send({'x-user': `u${i}`})
      await send({'x-user': `u${i + 7}`})
      registry.remove('api', e.instance)
    }
    await send({'x-user': 'last'})
    expect(destination.tracked().outlier).toBe(2)
    expect(destination.tracked().balancer).toBeLessThanOrEqual(2)
    destination.close()
  })

  test('an attempt that ends after its instance left does not bring its entry back', async () => {
    const {registry, destination, held, clock} = setup(basePolicy({loadBalancer: {kind: 'ewma'}}), {hold: true})
    const answer = callService(destination.service, meshRequest(), callContext(clock))
    expect(held).toHaveLength(1)
    expect(destination.tracked().balancer).toBe(1)
    registry.remove('api', held[0].instance)
    expect(destination.tracked().balancer).toBe(0)
    held[0].reply.ok({status: 200, headers: [], body: null})
    expect((await answer).status).toBe(200)
    expect(destination.tracked().balancer).toBe(0)
  })
})
