// Per-consumer rate limits on a real mesh: an API key header picks the bucket and a plan
// header its tier; answers carry RateLimit-* headers; more keys than maxConsumers, and
// requests aborted or evicted while in flight, leave every counter at 0 (#21.9).
import net, {type Socket} from 'node:net'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {connect as controlClient} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import {runLoad} from '../../src/sim/load/load-generator.js'
import {downMesh, upMesh} from '../helpers/mesh.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const MAX_CONSUMERS = 50

describe('per-consumer rate limits', () => {
  let dir: string
  let port: number
  let ingress: string

  const status = () => controlClient(meshPaths(dir)).status() as Promise<MeshStatus>
  const apiLoad = async () => (await status()).services.find((s) => s.name === 'api')!.load!
  const send = async (path: string, headers: Record<string, string>) => {
    const res = await request(`${ingress}${path}`, {headers, headersTimeout: 20_000, bodyTimeout: 20_000})
    await res.body.text()
    const h = (name: string) => res.headers[name] as string | undefined
    return {
      status: res.statusCode,
      limit: h('ratelimit-limit'),
      remaining: h('ratelimit-remaining'),
      reset: h('ratelimit-reset'),
      retryAfter: h('retry-after'),
      flags: h('x-mesh-response-flags'),
      reason: h('x-mesh-reason'),
    }
  }

  beforeAll(async () => {
    ;({dir, port, ingress} = await upMesh(
      (p) => `
name: tiers
ingress: {port: ${p}, routes: [{prefix: /, service: api}]}
services:
  api:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    policy:
      rateLimit:
        algorithm: token-bucket
        key: {header: x-api-key}
        tiers:
          by: {header: x-plan}
          limits: {free: {rate: 10/s, burst: 2}, gold: {rate: 200/s, burst: 20}}
          default: 2/s
        maxConsumers: ${MAX_CONSUMERS}
`,
    ))
  }, 90_000)

  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  test('free (10/s) and gold (200/s) driven at 100/s each for 3 s get about 30 and 300', async () => {
    const drive = (key: string, plan: string) =>
      runLoad({target: ingress, rps: 100, durationMs: 3000, headers: {'x-api-key': key, 'x-plan': plan}, timeoutMs: 10_000})
    const [free, gold] = await Promise.all([drive('k-free', 'free'), drive('k-gold', 'gold')])
    const admittedFree = free.statuses['200'] ?? 0
    const admittedGold = gold.statuses['200'] ?? 0
    // A token bucket cannot admit more than burst + rate × the time the load took (a busy machine stretches it).
    expect(admittedFree).toBeLessThanOrEqual(2 + Math.ceil((10 * free.durationMs) / 1000) + 1)
    expect(admittedFree).toBeGreaterThanOrEqual(27)
    expect(free.statuses['429']).toBe(free.requests - admittedFree)
    expect(admittedGold).toBeGreaterThanOrEqual(270)
    expect(admittedGold).toBeLessThanOrEqual(300)
  }, 30_000)

  test('answers carry RateLimit-Limit, -Remaining and -Reset; a 429 adds Retry-After and names a fingerprint of the key, never the key', async () => {
    const gold = await send('/', {'x-api-key': 'gold-headers', 'x-plan': 'gold'})
    expect(gold).toMatchObject({status: 200, limit: '20', remaining: '19', reset: '1'})
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await send('/', {'x-api-key': 'sk_live_free_secret', 'x-plan': 'free'}))
    const refused = answers.filter((a) => a.status === 429)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(r).toMatchObject({flags: 'RL', limit: '2', remaining: '0', reset: '1', retryAfter: '1'})
      expect(r.reason).toMatch(/from x-api-key #[0-9a-f]{8} \(tier free: 10\/1s\)/)
      expect(r.reason).not.toContain('sk_live_free_secret')
    }
    for (const a of answers.filter((x) => x.status === 200)) expect(a.limit).toBe('2')
  })

  test('requests without a key share one bucket at the default tier, whatever plan they claim', async () => {
    const answers = []
    for (let i = 0; i < 8; i++) answers.push(await send('/', i % 2 ? {'x-plan': 'gold'} : {}))
    const admitted = answers.filter((a) => a.status === 200).length
    expect(admitted).toBeGreaterThanOrEqual(2)
    expect(admitted).toBeLessThanOrEqual(4)
    const refused = answers.find((a) => a.status === 429)!
    expect(refused.reason).toContain('without x-api-key (they share one bucket; tier default: 2/1s)')
  })

  test(`more keys than maxConsumers (${MAX_CONSUMERS}), some evicted in flight and some aborted: answers complete, the map stays bounded, every counter is back at 0`, async () => {
    // 40 slow requests in flight, each its own consumer...
    const slow = Array.from({length: 40}, (_, i) => send('/slow?delay=600', {'x-api-key': `slow-${i}`, 'x-plan': 'gold'}))
    await sleep(100)
    // ...40 more the client abandons (RST) while the service is still answering...
    await Promise.all(Array.from({length: 40}, (_, i) => abandon(port, `GET /gone?delay=600 HTTP/1.1\r\nHost: x\r\nx-api-key: gone-${i}\r\nx-plan: free\r\n\r\n`)))
    // ...and 120 quick ones, so the slow consumers are dropped from the map before they are answered.
    for (let i = 0; i < 120; i += 20) await Promise.all(Array.from({length: 20}, (_, j) => send('/', {'x-api-key': `quick-${i + j}`})))
    expect((await apiLoad()).rateLimitConsumers).toBeLessThanOrEqual(MAX_CONSUMERS)
    for (const answer of await Promise.all(slow)) expect(answer).toMatchObject({status: 200, limit: '20', remaining: '19'})
    const deadline = Date.now() + 5_000
    let load = await apiLoad()
    while (Date.now() < deadline && (load.breaker.requests !== 0 || Object.values(load.instances).some((n) => n !== 0))) {
      await sleep(200)
      load = await apiLoad()
    }
    expect(load.breaker).toEqual({requests: 0, pending: 0, connections: 0, retries: 0})
    expect(Object.values(load.instances).every((n) => n === 0)).toBe(true)
    expect(load.rateLimitConsumers).toBe(MAX_CONSUMERS)
    expect((await status()).requestsInFlight ?? 0).toBe(0)
    expect((await send('/after', {'x-api-key': 'after'})).status).toBe(200)
  }, 30_000)
})

/** Sends `head` and resets the connection (SO_LINGER 0) 50 ms later, before the answer. */
async function abandon(port: number, head: string): Promise<void> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', () => undefined)
    s.once('error', reject)
  })
  socket.write(head)
  await sleep(50)
  socket.resetAndDestroy()
}
