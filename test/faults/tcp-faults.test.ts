// Connection-level faults of a `protocol: tcp` service on a virtual clock: what reaches the
// caller, and when, from an instance that sends chunks.
import {EventEmitter} from 'node:events'
import {describe, expect, test} from 'vitest'
import {downstreamWithFaults, faultPlan, type TcpFaultPlan, type TcpStream} from '../../src/sim/proxy/tcp-proxy.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import type {ServiceConfig} from '../../src/sim/config/types.js'
import {Registry} from '../../src/sim/proxy/registry.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import {SeededRandom} from '../../src/sim/time/random.js'

/** A socket stand-in: records what was written to it, and when; `emit` plays the instance. */
class FakeSocket extends EventEmitter {
  written: Array<{at: number; text: string}> = []
  ended?: number
  reset?: number
  paused = false
  constructor(private readonly clock: VirtualClock) {
    super()
  }
  write(chunk: Buffer | string): boolean {
    this.written.push({at: this.clock.now(), text: chunk.toString()})
    return true
  }
  end(): this {
    this.ended = this.clock.now()
    return this
  }
  pause(): this {
    this.paused = true
    return this
  }
  resume(): this {
    this.paused = false
    return this
  }
  resetAndDestroy(): this {
    this.reset ??= this.clock.now()
    return this
  }
}

function run(spec: Parameters<typeof faultPlan>[0]) {
  const clock = new VirtualClock()
  const from = new FakeSocket(clock)
  const to = new FakeSocket(clock)
  const plan = faultPlan(spec) as TcpFaultPlan
  downstreamWithFaults(from as unknown as TcpStream, to as unknown as TcpStream, plan, {clock, random: new SeededRandom(1)})
  return {clock, from, to, plan}
}

describe('TCP faults', () => {
  test('no fault, no plan: the connection is copied as it is', () => {
    expect(faultPlan([])).toBeUndefined()
  })

  test('abort and partition refuse the connection; partition --blackhole holds it', () => {
    expect(faultPlan([{service: 'db', kind: 'abort', status: 503}])).toMatchObject({refuse: true, blackhole: false})
    expect(faultPlan([{service: 'db', kind: 'partition'}])).toMatchObject({refuse: true})
    expect(faultPlan([{service: 'db', kind: 'partition', blackhole: true}])).toMatchObject({refuse: false, blackhole: true})
  })

  test('a delay holds each chunk from its arrival, in order; the end follows the last chunk', async () => {
    const {clock, from, to} = run([{service: 'db', kind: 'delay', delayMs: 100}])
    from.emit('data', Buffer.from('a'))
    await clock.advance(30)
    from.emit('data', Buffer.from('b'))
    from.emit('end')
    await clock.advance(200)
    expect(to.written).toEqual([
      {at: 100, text: 'a'},
      {at: 130, text: 'b'},
    ])
    expect(to.ended).toBe(130)
  })

  test('bandwidth spaces the bytes at the rate; reset passes the first N bytes, then resets both sides', async () => {
    const slow = run([{service: 'db', kind: 'bandwidth', bytesPerSecond: 1000}])
    slow.from.emit('data', Buffer.alloc(500, 'x'))
    slow.from.emit('data', Buffer.alloc(500, 'y'))
    await slow.clock.advance(2000)
    expect(slow.to.written.map((w) => [w.at, w.text.length])).toEqual([
      [500, 500],
      [1000, 500],
    ])

    const cut = run([{service: 'db', kind: 'reset', afterBytes: 5}])
    cut.from.emit('data', Buffer.from('abc'))
    cut.from.emit('data', Buffer.from('defgh'))
    cut.from.emit('data', Buffer.from('never'))
    await cut.clock.advance(10)
    expect(cut.to.written.map((w) => w.text)).toEqual(['abc', 'de'])
    expect(cut.to.reset).toBe(0)
    expect(cut.from.reset).toBe(0)

    const atOnce = run([{service: 'db', kind: 'reset'}])
    expect(atOnce.to.reset).toBe(0)
  })

  test('slow close holds the end of the stream; a jittered delay stays within its bounds', async () => {
    const {clock, from, to} = run([{service: 'db', kind: 'slow-close', delayMs: 500}])
    from.emit('data', Buffer.from('last'))
    from.emit('end')
    await clock.advance(1000)
    expect(to.written).toEqual([{at: 0, text: 'last'}])
    expect(to.ended).toBe(500)

    const jitter = run([{service: 'db', kind: 'delay', delayMs: 100, jitterMs: 50}])
    for (let i = 0; i < 20; i++) jitter.from.emit('data', Buffer.from(String(i)))
    await jitter.clock.advance(1000)
    expect(jitter.to.written.map((w) => w.text)).toEqual(Array.from({length: 20}, (_, i) => String(i)))
    for (const w of jitter.to.written) expect(w.at).toBeGreaterThanOrEqual(50)
    expect(Math.max(...jitter.to.written.map((w) => w.at))).toBeLessThanOrEqual(150)
  })
})

describe('where a TCP connection goes', () => {
  const service = (policy: Record<string, unknown>, weights: Record<string, number>): ServiceConfig => ({
    name: 'db',
    protocol: 'tcp',
    dependsOn: [],
    health: {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3},
    policy: {routes: [], ...policy} as unknown as ServiceConfig['policy'],
    versions: Object.keys(weights).map((name) => ({name, replicas: 2, workload: {kind: 'address', host: '127.0.0.1', port: 1}, env: {}})),
    stopGracePeriodMs: 1000,
  })

  function destination(policy: Record<string, unknown>, weights: Record<string, number>) {
    const registry = new Registry(['db'])
    for (const version of Object.keys(weights)) {
      for (let i = 0; i < 2; i++) registry.add({instance: `db-${version}-${i}`, service: 'db', version, host: '127.0.0.1', port: 1, inboundPort: 1, origin: ''})
    }
    const clock = new VirtualClock()
    return new Destination(service(policy, weights), new Map(Object.entries(weights)), {
      registry,
      faults: {faults: new FaultSet(clock), allowHeaders: () => false},
      clock,
      // A protocol: tcp destination's HTTP stack is never called.
      leaf: () => undefined as never,
      sink: {record: () => undefined},
      seed: 1,
    })
  }

  test('least-request counts open connections: a new one goes to the instance with fewer', () => {
    const d = destination({loadBalancer: {kind: 'least-request'}}, {v1: 100})
    const first = d.connections.pick(new Set())!
    d.connections.opened!(first)
    for (let i = 0; i < 10; i++) expect(d.connections.pick(new Set())!.instance).not.toBe(first.instance)
    const other = d.connections.pick(new Set())!
    d.connections.opened!(other)
    d.connections.opened!(other)
    for (let i = 0; i < 10; i++) expect(d.connections.pick(new Set())!.instance).toBe(first.instance)
    // Closed ones stop counting.
    d.connections.closed!(other)
    d.connections.closed!(other)
    for (let i = 0; i < 10; i++) expect(d.connections.pick(new Set())!.instance).toBe(other.instance)
  })

  test('circuitBreaker.maxConnections caps the open connections; a closed one makes room', () => {
    const d = destination({loadBalancer: {kind: 'round-robin'}, circuitBreaker: {maxConnections: 2, maxPendingRequests: 1, maxRequests: 1, maxRetries: 1}}, {v1: 100})
    expect([d.connections.admit!(), d.connections.admit!(), d.connections.admit!()]).toEqual([true, true, false])
    d.connections.release!()
    expect(d.connections.admit!()).toBe(true)
  })

  test('outlier detection ejects an instance that refuses connections; an accepted connect counts as a success', () => {
    const d = destination({loadBalancer: {kind: 'round-robin'}, outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50}}, {v1: 100})
    const [a, b] = [d.connections.pick(new Set())!, d.connections.pick(new Set())!]
    d.connections.refused!(a)
    d.connections.opened!(a)
    d.connections.refused!(a)
    // Not consecutive: still picked.
    expect(new Set(Array.from({length: 4}, () => d.connections.pick(new Set())!.instance))).toEqual(new Set([a.instance, b.instance]))
    d.connections.refused!(a)
    expect(d.outlier!.isEjected(a.instance)).toBe(true)
    for (let i = 0; i < 6; i++) expect(d.connections.pick(new Set())!.instance).toBe(b.instance)
  })

  test('connections follow the version weights, and a retry after a refused connect avoids what was tried', () => {
    const d = destination({loadBalancer: {kind: 'round-robin'}}, {v1: 75, v2: 25})
    const versions = Array.from({length: 400}, () => d.connections.pick(new Set())!.version)
    expect(versions.filter((v) => v === 'v2').length).toBe(100)
    const tried = new Set(['db-v1-0'])
    for (let i = 0; i < 10; i++) {
      const e = d.connections.pick(tried)!
      if (e.version === 'v1') expect(e.instance).toBe('db-v1-1')
    }
  })
})
