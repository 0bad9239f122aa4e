// `mesh sim` runs the data plane's policy code, not a re-implementation: its stacks are
// Destinations built by the same constructor the DataPlane uses, and a scripted sequence of
// slow and failing instances gets the same retry, timeout and ejection decisions, request
// by request, in virtual time and through the real leaf over loopback in real time.
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Agent} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshConfig, SimulateConfig} from '../../src/sim/config/types.js'
import {versionWeights} from '../../src/sim/config/versions.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {DataPlane} from '../../src/sim/proxy/data-plane.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import {H2Sessions} from '../../src/sim/proxy/h2-upstream.js'
import {networkLeaf} from '../../src/sim/proxy/leaf.js'
import {type Endpoint, Registry} from '../../src/sim/proxy/registry.js'
import type {CallContext, MeshRequest, MeshResponse, Reply} from '../../src/sim/proxy/stack.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {realClock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'
import {ServiceModel, SimInstance} from '../../src/sim/virtual/instance-model.js'
import {simulatedMesh} from '../../src/sim/virtual/simulation.js'
import {parsed, yaml} from '../config/helpers.js'
import {shopConfig} from './shop.js'

const SEED = 7
const REQUESTS = 14

// Three instances of api: one always answers 503, one answers after 250 ms (past the 60 ms
// per-try timeout), one answers at once. Round-robin, 2 retries on 5xx, ejection after 2
// consecutive 5xx (the 503s; per-try timeouts are gateway errors of their own).
const config = (): MeshConfig =>
  parsed(
    yaml(
      'name: decisions',
      'services:',
      '  api:',
      '    replicas: 3',
      '    simulate: {latency: {p50: 1ms, p99: 1ms}}',
      '    policy:',
      '      loadBalancer: round-robin',
      '      retries: {attempts: 2, perTryTimeout: 60ms, on: [5xx, gateway-error], backoff: {base: 1ms, max: 2ms}}',
      '      outlierDetection: {consecutive5xxErrors: 2, consecutiveGatewayErrors: 0, interval: 60s, baseEjectionTime: 60s, maxEjectionPercent: 50}',
    ),
  )

const BEHAVIOUR: Record<string, {status: number; ms: number}> = {
  'api-v1-0': {status: 503, ms: 1},
  'api-v1-1': {status: 200, ms: 250},
  'api-v1-2': {status: 200, ms: 1},
}

function model(b: {status: number; ms: number}): SimulateConfig {
  return {latency: {p50Ms: b.ms, p99Ms: b.ms}, errorRate: b.status >= 500 ? 1 : 0, errorStatus: b.status, calls: [], callMode: 'sequential', responseBytes: 2, concurrency: 0, seed: 0}
}

/** What the mesh decided for one request: its answer, and each attempt's instance and result. */
interface Decision {
  status: number
  flags?: string
  attempts: number
  tries: string[]
}

function decisions(spans: Span[]): Decision[] {
  const byTrace = new Map<string, Span[]>()
  for (const s of spans) {
    if (!byTrace.has(s.traceId)) byTrace.set(s.traceId, [])
    byTrace.get(s.traceId)!.push(s)
  }
  return [...byTrace.values()].map((trace) => {
    const client = trace.find((s) => s.kind === 'client')!
    const tries = trace
      .filter((s) => s.kind === 'server')
      .sort((a, b) => (a.attempt ?? 0) - (b.attempt ?? 0))
      .map((s) => `${s.instance} ${s.status}${s.responseFlags ? ` ${s.responseFlags}` : ''}`)
    return {status: client.status, flags: client.responseFlags, attempts: client.attempt ?? 1, tries}
  })
}

describe('mesh sim and the data plane: one factory, the same decisions', () => {
  test("the sim's destinations are the data plane's Destination, with the same policy and the same outermost layer", () => {
    const c = shopConfig()
    const sim = simulatedMesh(c, 1)
    const registry = new Registry(c.services.map((s) => s.name))
    const plane = new DataPlane(registry, c.services, new Map(c.services.map((s) => [s.name, versionWeights(s)])), {clock: realClock, faults: new FaultSet(realClock), seed: 1})
    try {
      for (const s of c.services) {
        const ours = sim.destinations.get(s.name)!
        const theirs = plane.destination(s.name)!
        expect(ours).toBeInstanceOf(Destination)
        expect(Object.getPrototypeOf(ours)).toBe(Object.getPrototypeOf(theirs))
        expect(ours.policy).toEqual(theirs.policy)
        expect(ours.service.name).toBe(theirs.service.name)
      }
    } finally {
      sim.close()
      for (const s of c.services) plane.destination(s.name)?.close()
    }
  })

  let servers: Server[] = []
  const endpoints: Endpoint[] = []
  const agent = new Agent({connections: 8})
  const h2 = new H2Sessions()

  beforeAll(async () => {
    for (const [instance, b] of Object.entries(BEHAVIOUR)) {
      const server = createServer((req, res) => {
        const timer = setTimeout(() => {
          res.writeHead(b.status, {'content-length': 2})
          res.end('ok')
        }, b.ms)
        res.on('close', () => clearTimeout(timer))
        req.resume()
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as AddressInfo).port
      servers.push(server)
      endpoints.push({instance, service: 'api', version: 'v1', host: '127.0.0.1', port, inboundPort: port, origin: `http://127.0.0.1:${port}`})
    }
  })
  afterAll(async () => {
    await agent.close()
    for (const s of servers) {
      s.closeAllConnections()
      await new Promise((r) => s.close(r))
    }
    servers = []
  })

  test('a scripted retry / per-try timeout / ejection sequence: the same decisions request by request', {timeout: 20_000}, async () => {
    // Virtual time: the sim's own instances, each given its scripted behaviour.
    const spans: Span[] = []
    const sim = simulatedMesh(config(), SEED)
    const sink = sim.stats.record.bind(sim.stats)
    sim.stats.record = (span) => {
      spans.push(span)
      sink(span)
    }
    for (const [name, b] of Object.entries(BEHAVIOUR)) {
      const old = sim.instances.get(name)!
      sim.instances.set(name, new SimInstance(old.endpoint, new ServiceModel(model(b)), new SeededRandom(1), sim.world))
    }
    let sent = 0
    const next = () => {
      if (sent++ >= REQUESTS) return
      sim.send('/', {ok: (r) => (r.body?.discard(), sim.clock.setTimer(1, next)), fail: () => sim.clock.setTimer(1, next)}, {service: 'api'})
    }
    next()
    await sim.clock.run(() => sent > REQUESTS)
    sim.close()
    const simulated = decisions(spans)

    // Real time: the same Destination over the network leaf to three real servers.
    const real: Span[] = []
    const c = config()
    const registry = new Registry(['api'])
    for (const e of endpoints) registry.add(e)
    const destination = new Destination(c.services[0], versionWeights(c.services[0]), {
      registry,
      faults: {faults: new FaultSet(realClock), allowHeaders: () => false},
      clock: realClock,
      leaf: networkLeaf(agent, h2, new Map()),
      sink: {record: (s) => real.push(s)},
      seed: SEED,
    })
    try {
      for (let i = 1; i <= REQUESTS; i++) {
        const cancellation = new Cancellation()
        const req: MeshRequest = {method: 'GET', path: '/', headers: {}, body: null, replayable: true, destination: 'api', source: 'ingress', peer: {identity: 'ingress', authn: 'listener'}}
        const ctx: CallContext = {clock: realClock, signal: cancellation, canceller: cancellation, traceId: i.toString(16).padStart(32, '0'), traceFlags: '01', clientSpanId: i.toString(16).padStart(16, '0'), decision: {}, attempt: 1}
        await new Promise<void>((resolve) => {
          const reply: Reply = {
            ok: (r: MeshResponse) => {
              r.body?.onDone(() => resolve())
              r.body?.discard()
              if (!r.body) resolve()
            },
            fail: () => resolve(),
          }
          destination.service(req, ctx, reply)
        })
      }
      // The timed-out attempts' server spans end when their instance's late answer is dropped.
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      destination.close()
    }
    const networked = decisions(real)

    expect(simulated).toHaveLength(REQUESTS)
    // The script exercises what it claims: a retry after a 503, a per-try timeout, an ejection.
    expect(simulated.some((d) => d.tries.some((t) => t.startsWith('api-v1-0 503')))).toBe(true)
    expect(simulated.some((d) => d.tries.some((t) => t.includes(' UT')))).toBe(true)
    expect(simulated.slice(-4).every((d) => d.tries.every((t) => !t.startsWith('api-v1-0')))).toBe(true)
    expect(simulated).toEqual(networked)
  })
})
