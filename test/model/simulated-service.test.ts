import http from 'node:http'
import {once} from 'node:events'
import type {AddressInfo} from 'node:net'
import {afterAll, afterEach, describe, expect, it} from 'vitest'
import {Agent, request} from 'undici'
import {createSimulatedService, type SimulatedService, WARM_UP_MAX_SLEEP_MS, WARM_UP_TRACESTATE} from '../../src/sim/model/simulated-service.js'
import type {SimulateConfig} from '../../src/sim/config/types.js'
import {realClock, VirtualClock, type Clock} from '../../src/sim/time/clock.js'
import {SeededRandom} from '../../src/sim/time/random.js'

const base: SimulateConfig = {
  latency: {p50Ms: 1, p99Ms: 1},
  errorRate: 0,
  errorStatus: 500,
  calls: [],
  callMode: 'sequential',
  responseBytes: 512,
  concurrency: 0,
  seed: 42,
}

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

function urlOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function startSim(config: Partial<SimulateConfig>, opts: {
  dependencyUrls?: Record<string, string>; clock?: Clock; seed?: number
} = {}): Promise<{sim: SimulatedService; url: string}> {
  const sim = createSimulatedService({
    config: {...base, ...config},
    service: 'catalog',
    version: 'v1',
    instance: 'catalog-v1-0',
    dependencyUrls: opts.dependencyUrls ?? {},
    clock: opts.clock ?? realClock,
    random: new SeededRandom(opts.seed ?? 42),
  })
  sim.server.listen(0, '127.0.0.1')
  await once(sim.server, 'listening')
  cleanup.push(() => sim.close())
  return {sim, url: urlOf(sim.server)}
}

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
}

/** A downstream that records what it receives and answers `status` (or what `answer` decides). */
async function startDownstream(status = 200, answer?: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    seen.push({method: req.method!, url: req.url!, headers: req.headers})
    req.resume()
    if (answer) return answer(req, res)
    res.writeHead(status, {'content-type': 'application/json'})
    res.end(JSON.stringify({from: 'downstream'}))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return {server, url: urlOf(server), seen}
}

const client = new Agent()
afterAll(() => client.close())

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(url, {method: method as 'GET', headers, dispatcher: client})
  const text = await res.body.text()
  return {status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text)}
}

/** Waits (without wall-clock sleeps) until the service has armed a timer on the virtual clock. */
async function untilPending(clock: VirtualClock, n: number): Promise<void> {
  for (let i = 0; i < 200_000; i++) {
    if (clock.pending() >= n) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`the clock never had ${n} pending alarm(s); has ${clock.pending()}`)
}

describe('simulated service', () => {
  it('answers /healthz at once with {"status":"ok"}', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 1000, p99Ms: 1000}, concurrency: 1, errorRate: 1}, {clock})
    const res = await get(`${url}/healthz`)
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({status: 'ok'})
    expect(clock.pending()).toBe(0)
  })

  it('calls its dependency as declared, forwards trace headers, and reports the call', async () => {
    const downstream = await startDownstream()
    const {url} = await startSim(
      {calls: [{service: 'inventory', probability: 1, path: '/stock?sku=1', method: 'POST'}]},
      {dependencyUrls: {inventory: downstream.url}},
    )
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const res = await get(`${url}/items?page=2`, {
      traceparent,
      tracestate: 'vendor=1',
      'x-request-id': 'req-1',
      b3: '4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1',
      'x-b3-traceid': '4bf92f3577b34da6a3ce929d0e0e4736',
      authorization: 'Bearer not-for-downstream',
    })

    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/json')
    expect(res.headers['x-mesh-served-by']).toBe('catalog-v1-0')
    const body = res.json()
    expect(body).toMatchObject({
      service: 'catalog', version: 'v1', instance: 'catalog-v1-0', method: 'GET', path: '/items?page=2',
      calls: [{service: 'inventory', status: 200}],
    })
    expect(typeof body.calls[0].ms).toBe('number')
    expect(Buffer.byteLength(res.text)).toBe(512)

    expect(downstream.seen).toHaveLength(1)
    const [call] = downstream.seen
    expect(call.method).toBe('POST')
    expect(call.url).toBe('/stock?sku=1')
    expect(call.headers).toMatchObject({
      traceparent,
      tracestate: 'vendor=1',
      'x-request-id': 'req-1',
      b3: '4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1',
      'x-b3-traceid': '4bf92f3577b34da6a3ce929d0e0e4736',
    })
    expect(call.headers.authorization).toBeUndefined()
  })

  it('skips a call whose probability is 0', async () => {
    const downstream = await startDownstream()
    const {url} = await startSim(
      {calls: [
        {service: 'inventory', probability: 0, path: '/never', method: 'GET'},
        {service: 'pricing', probability: 1, path: '/always', method: 'GET'},
      ]},
      {dependencyUrls: {inventory: downstream.url, pricing: downstream.url}},
    )
    for (let i = 0; i < 20; i++) expect((await get(url)).status).toBe(200)
    expect(downstream.seen.map((s) => s.url)).toEqual(Array(20).fill('/always'))
  })

  it('answers errorStatus on every request when errorRate is 1', async () => {
    const {url} = await startSim({errorRate: 1, errorStatus: 503})
    for (let i = 0; i < 5; i++) {
      const res = await get(url)
      expect(res.status).toBe(503)
      expect(res.json().error).toMatch(/simulated error/)
    }
  })

  it('fails about errorRate of 500 requests (0.3 ± 0.06)', async () => {
    const {url} = await startSim({errorRate: 0.3, errorStatus: 500, latency: {p50Ms: 0, p99Ms: 0}}, {seed: 7})
    let errors = 0
    for (let i = 0; i < 500; i++) if ((await get(url)).status === 500) errors++
    expect(errors / 500).toBeGreaterThanOrEqual(0.24)
    expect(errors / 500).toBeLessThanOrEqual(0.36)
  })

  it('replays the same answers for the same seed', async () => {
    const config: Partial<SimulateConfig> = {
      errorRate: 0.5,
      latency: {p50Ms: 0, p99Ms: 0},
      calls: [{service: 'inventory', probability: 0.5, path: '/', method: 'GET'}],
    }
    const run = async (seed: number) => {
      const downstream = await startDownstream()
      const {url} = await startSim(config, {seed, dependencyUrls: {inventory: downstream.url}})
      const outcomes: string[] = []
      for (let i = 0; i < 40; i++) {
        const res = await get(url)
        outcomes.push(`${res.status}:${res.json().calls.length}`)
      }
      return outcomes
    }
    const first = await run(11)
    expect(await run(11)).toEqual(first)
    expect(await run(12)).not.toEqual(first)
  })

  it('a warm-up request (tracestate meshsim=warm-up) never fails, passes the mark on, and leaves the seeded stream as it was', async () => {
    const config: Partial<SimulateConfig> = {
      errorRate: 0.5,
      latency: {p50Ms: 0, p99Ms: 0},
      calls: [{service: 'inventory', probability: 0.5, path: '/', method: 'GET'}],
    }
    const run = async (warmUps: number) => {
      const downstream = await startDownstream()
      const {url} = await startSim(config, {seed: 11, dependencyUrls: {inventory: downstream.url}})
      const warm: number[] = []
      for (let i = 0; i < warmUps; i++) {
        warm.push((await get(url, {traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: `other=1,${WARM_UP_TRACESTATE}`})).status)
      }
      const outcomes: string[] = []
      for (let i = 0; i < 40; i++) {
        const res = await get(url)
        outcomes.push(`${res.status}:${res.json().calls.length}`)
      }
      return {warm, outcomes, downstream: downstream.seen}
    }
    const cold = await run(0)
    const warmed = await run(30)
    expect(warmed.warm).toEqual(Array(30).fill(200))
    expect(warmed.outcomes).toEqual(cold.outcomes)
    expect(cold.outcomes.some((o) => o.startsWith('500'))).toBe(true)
    // Its calls were drawn too (about half of 30), each carrying the mark.
    const marked = warmed.downstream.filter((s) => String(s.headers.tracestate).includes(WARM_UP_TRACESTATE))
    expect(marked.length).toBeGreaterThan(5)
    expect(warmed.downstream.length - marked.length).toBe(cold.downstream.length)
  })

  it('answers 500 naming the dependency when it answers 5xx, without calling the next one', async () => {
    const failing = await startDownstream(503)
    const next = await startDownstream()
    const {url} = await startSim(
      {calls: [
        {service: 'payments', probability: 1, path: '/', method: 'GET'},
        {service: 'ledger', probability: 1, path: '/', method: 'GET'},
      ]},
      {dependencyUrls: {payments: failing.url, ledger: next.url}},
    )
    const res = await get(url)
    expect(res.status).toBe(500)
    expect(res.json()).toMatchObject({dependency: 'payments', status: 503, error: 'dependency "payments" answered 503'})
    expect(next.seen).toHaveLength(0)
  })

  it('answers its callErrorStatus instead when it has one (a model of code that answers 502)', async () => {
    const failing = await startDownstream(503)
    const {url} = await startSim({callErrorStatus: 502, calls: [{service: 'payments', probability: 1, path: '/', method: 'GET'}]}, {dependencyUrls: {payments: failing.url}})
    const res = await get(url)
    expect(res.status).toBe(502)
    expect(res.json()).toMatchObject({dependency: 'payments', status: 503})
  })

  it('answers 500 when a dependency refuses the connection', async () => {
    const gone = await startDownstream()
    const goneUrl = gone.url
    await new Promise((resolve) => gone.server.close(resolve))
    const {url} = await startSim(
      {calls: [{service: 'inventory', probability: 1, path: '/', method: 'GET'}]},
      {dependencyUrls: {inventory: goneUrl}},
    )
    const res = await get(url)
    expect(res.status).toBe(500)
    expect(res.json()).toMatchObject({dependency: 'inventory', status: 0})
    expect(res.json().error).toMatch(/dependency "inventory" failed/)
  })

  it('answers 500 when a called dependency has no URL', async () => {
    const {url} = await startSim({calls: [{service: 'order-history', probability: 1, path: '/', method: 'GET'}]})
    const res = await get(url)
    expect(res.status).toBe(500)
    expect(res.json().error).toMatch(/ORDER_HISTORY_URL is not set/)
  })

  it('makes parallel calls at the same time', async () => {
    // Each downstream answers only once both requests have arrived: sequential calls would hang.
    const waiting: http.ServerResponse[] = []
    const release = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      waiting.push(res)
      if (waiting.length === 2) for (const r of waiting) r.end('{}')
    }
    const a = await startDownstream(200, release)
    const b = await startDownstream(200, release)
    const {url} = await startSim(
      {callMode: 'parallel', calls: [
        {service: 'a', probability: 1, path: '/', method: 'GET'},
        {service: 'b', probability: 1, path: '/', method: 'GET'},
      ]},
      {dependencyUrls: {a: a.url, b: b.url}},
    )
    const res = await get(url)
    expect(res.status).toBe(200)
    expect(res.json().calls.map((c: {service: string; status: number}) => `${c.service}:${c.status}`)).toEqual(['a:200', 'b:200'])
  })

  it('waits its latency on the clock, and queues beyond its concurrency', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 100, p99Ms: 100}, concurrency: 1}, {clock})
    const done: number[] = []
    const requests = [0, 1, 2].map((i) => get(`${url}/${i}`).then((res) => {
      done.push(i)
      return res
    }))

    await untilPending(clock, 1)
    expect(clock.pending()).toBe(1) // one served, two queued
    expect(done).toEqual([])

    await clock.advance(100)
    await untilPending(clock, 1)
    expect(clock.now()).toBe(100)

    await clock.advance(100)
    await untilPending(clock, 1)
    await clock.advance(100)
    const answers = await Promise.all(requests)
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200])
    expect(answers.map((r) => r.json().path)).toEqual(['/0', '/1', '/2'])
  })

  it('a caller that leaves while queued gives its place up: its work never starts', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 100, p99Ms: 100}, concurrency: 1}, {clock})
    const first = get(`${url}/first`)
    await untilPending(clock, 1)
    const gone = new AbortController()
    const second = request(`${url}/second`, {signal: gone.signal, dispatcher: client}).catch((e: Error) => e.name)
    await new Promise((resolve) => setTimeout(resolve, 50)) // queued behind the first
    gone.abort()
    expect(await second).toBe('AbortError')
    await new Promise((resolve) => setTimeout(resolve, 50))
    await clock.advance(100)
    expect((await first).status).toBe(200)
    // The slot went to no one: no latency sleep was started for the request that left.
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(clock.pending()).toBe(0)
    // And the slot is free: the next caller is served at once.
    const third = get(`${url}/third`)
    await untilPending(clock, 1)
    await clock.advance(100)
    expect((await third).status).toBe(200)
  })

  it('lets an in-flight request finish on close, then stops', async () => {
    const clock = new VirtualClock()
    const {sim, url} = await startSim({latency: {p50Ms: 50, p99Ms: 50}}, {clock})
    const inFlight = get(url)
    await untilPending(clock, 1)

    let closed = false
    const closing = sim.close().then(() => { closed = true })
    await new Promise((resolve) => setImmediate(resolve))
    expect(closed).toBe(false)
    expect(sim.server.listening).toBe(false) // no new connections

    await clock.advance(50)
    const res = await inFlight
    expect(res.status).toBe(200)
    expect(res.headers.connection).toBe('close')
    await closing
    expect(closed).toBe(true)
  })

  it('drains a request body', async () => {
    const {url} = await startSim({})
    const res = await request(url, {method: 'POST', body: 'x'.repeat(256 * 1024), dispatcher: client})
    expect(res.statusCode).toBe(200)
    expect(JSON.parse(await res.body.text()).method).toBe('POST')
  })

  it('sleeps a fraction of a millisecond exactly, all requests under one clock timer', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 0.5, p99Ms: 0.5}}, {clock})
    let answered = 0
    const replies = [get(`${url}/a`), get(`${url}/b`), get(`${url}/c`)].map((p) => p.then((r) => { answered++; return r }))
    // Three requests asleep; the heap of their deadlines holds one timer on the clock.
    await untilPending(clock, 1)
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(clock.pending()).toBe(1)
    await clock.advance(0.4)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(answered).toBe(0)
    await clock.advance(0.1)
    expect((await Promise.all(replies)).map((r) => r.status)).toEqual([200, 200, 200])
  })

  it('a warm-up request sleeps at most a millisecond of its latency; any other request all of it', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 200, p99Ms: 200}}, {clock})
    const warmUp = get(`${url}/w`, {tracestate: WARM_UP_TRACESTATE})
    await untilPending(clock, 1)
    await clock.advance(WARM_UP_MAX_SLEEP_MS)
    expect((await warmUp).status).toBe(200)
    let answered = false
    const user = get(`${url}/u`).then((r) => ((answered = true), r))
    await untilPending(clock, 1)
    await clock.advance(199)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(answered).toBe(false)
    await clock.advance(1)
    expect((await user).status).toBe(200)
  })

  it('a caller that leaves while its request sleeps: the request is served to its end and gives its slot back', async () => {
    const clock = new VirtualClock()
    const {url} = await startSim({latency: {p50Ms: 10, p99Ms: 10}, concurrency: 1}, {clock})
    const gone = new AbortController()
    const first = request(`${url}/first`, {signal: gone.signal, dispatcher: client}).catch((e: Error) => e.name)
    await untilPending(clock, 1)
    gone.abort()
    expect(await first).toBe('AbortError')
    await clock.advance(10)
    const next = get(`${url}/next`)
    await untilPending(clock, 1)
    await clock.advance(10)
    expect((await next).status).toBe(200)
  })

  it('warms connections to its dependencies before it listens: the first call finds one open', async () => {
    const connections: number[] = []
    const downstream = await startDownstream()
    downstream.server.on('connection', () => connections.push(downstream.seen.length))
    const sim = createSimulatedService({
      config: {...base, latency: {p50Ms: 0, p99Ms: 0}, calls: [{service: 'inventory', probability: 1, path: '/', method: 'GET'}]},
      service: 'catalog', version: 'v1', instance: 'catalog-v1-0',
      dependencyUrls: {inventory: downstream.url, unused: 'http://127.0.0.1:1'},
      clock: realClock, random: new SeededRandom(1),
    })
    cleanup.push(() => sim.close())
    await sim.warm(2_000)
    // The client side is connected; the server's accepts may still be queued.
    for (let i = 0; i < 100 && connections.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    // WARM_CONNECTIONS_PER_DEPENDENCY of them, opened before any request; none to a dependency it never calls.
    expect(connections).toEqual([0, 0])
    expect(downstream.seen).toHaveLength(0)
    sim.server.listen(0, '127.0.0.1')
    await once(sim.server, 'listening')
    const res = await get(urlOf(sim.server))
    expect(res.json().calls).toMatchObject([{service: 'inventory', status: 200}])
    expect(connections).toHaveLength(2)
  })

  it('starts when a dependency is not listening yet: warming gives up at once, its calls dial as usual', async () => {
    const gone = http.createServer()
    gone.listen(0, '127.0.0.1')
    await once(gone, 'listening')
    const deadUrl = urlOf(gone)
    await new Promise((resolve) => gone.close(resolve))
    const sim = createSimulatedService({
      config: {...base, calls: [{service: 'inventory', probability: 1, path: '/', method: 'GET'}]},
      service: 'catalog', version: 'v1', instance: 'catalog-v1-0',
      dependencyUrls: {inventory: deadUrl}, clock: realClock, random: new SeededRandom(1),
    })
    cleanup.push(() => sim.close())
    const began = Date.now()
    await sim.warm(5_000)
    expect(Date.now() - began).toBeLessThan(4_000)
    sim.server.listen(0, '127.0.0.1')
    await once(sim.server, 'listening')
    const res = await get(urlOf(sim.server))
    expect(res.status).toBe(500)
    expect(res.json().error).toMatch(/dependency "inventory" failed: ECONNREFUSED/)
  })
})
