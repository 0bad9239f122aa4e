// The stack a Destination builds from a mesh.yaml `policy:` block, driven against a real
// upstream: what the layer tests cannot show is that config reaches the stack at all.
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Agent} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {Registry} from '../../src/sim/proxy/registry.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import {H2Sessions} from '../../src/sim/proxy/h2-upstream.js'
import {networkLeaf} from '../../src/sim/proxy/leaf.js'
import {callService} from '../../src/sim/proxy/stack.js'
import {realClock} from '../../src/sim/time/clock.js'
import {parsed, yaml} from '../config/helpers.js'
import {callContext, meshRequest, readBody} from '../helpers/proxy-context.js'

describe('Destination: policy from mesh.yaml wired into the stack', () => {
  // The first request of each test stalls until the server closes; later ones answer at once.
  const seen: string[] = []
  const stalled: ServerResponse[] = []
  let server: Server
  let port: number
  const agent = new Agent({connections: 8})
  const h2 = new H2Sessions()

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.url!)
      if (seen.length === 1) stalled.push(res)
      else res.end(`answered try ${seen.length}`)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    for (const res of stalled) res.destroy()
    await agent.close()
    await new Promise((r) => server.close(r))
  })

  function destination(policyLines: string[]): Destination {
    const config = parsed(yaml('name: t', 'services:', '  api:', '    command: x', '    policy:', ...policyLines.map((l) => `      ${l}`)))
    const registry = new Registry(['api'])
    registry.add({instance: 'api-v1-0', service: 'api', version: 'v1', host: '127.0.0.1', port, inboundPort: port, origin: `http://127.0.0.1:${port}`})
    return new Destination(config.services[0], new Map([['v1', 100]]), {
      registry,
      faults: {faults: new FaultSet(realClock), allowHeaders: () => false},
      clock: realClock,
      leaf: networkLeaf(agent, h2, new Map()),
      sink: {record: () => undefined},
      seed: 1,
    })
  }

  test('retries.perTryTimeout ends a stalled try and the retry answers, well before the overall timeout', async () => {
    seen.length = 0
    const d = destination(['timeout: 5s', 'retries: {attempts: 2, perTryTimeout: 200ms, on: [reset]}'])
    const t0 = performance.now()
    const res = await callService(d.service, meshRequest({destination: 'api', path: '/slow'}), callContext(realClock as never))
    const ms = performance.now() - t0
    expect(res.status).toBe(200)
    expect((await readBody(res.body!)).bytes.toString()).toBe('answered try 2')
    // Without the per-try deadline the first try would hold the call until the 5 s timeout (504).
    expect(seen).toEqual(['/slow', '/slow'])
    expect(ms).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(4_000)
    d.close()
  })
})
