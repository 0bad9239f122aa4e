// The policies of mesh.yaml's `policy:` block, applied by real sidecars to real
// traffic: outlier ejection with retries, retry budgets, timeouts, rate limits,
// load balancing and version weights, and live `mesh apply`.
import http from 'node:http'
import {writeFileSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {connect} from '../../src/sim/control/control-client.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, freePort, get, mesh, meshDir, sendMany, sendUntilStopped, upMesh} from '../helpers/mesh.js'
import {sumSeries} from '../helpers/prometheus-parser.js'

/** What `mesh status --json` prints, from the control API straight (polled: a CLI run each time would cost a node start). */
async function status(dir: string): Promise<MeshStatus> {
  return connect(meshPaths(dir)).status()
}


const countBy = <T>(xs: T[], f: (x: T) => string | undefined) => {
  const m: Record<string, number> = {}
  for (const x of xs) {
    const k = f(x) ?? '-'
    m[k] = (m[k] ?? 0) + 1
  }
  return m
}

// The policy tests share one mesh, each on services of its own (a mesh up and down cost
// seconds each on a loaded machine); the `mesh apply` tests below rewrite mesh.yaml, so
// each of those starts its own.
describe('traffic policies', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: policies
ingress:
  port: ${port}
  routes:
    - {prefix: /api, service: api}
    - {prefix: /broken, service: broken}
    - {prefix: /slow, service: slow}
    - {prefix: /trickle, service: trickle}
    - {prefix: /limited, service: limited}
    - {prefix: /rr, service: rr}
    - {prefix: /split, service: split}
    - {prefix: /hash, service: hash}
    - {prefix: /breaker, service: breaker}
services:
  api:
    command: node fixtures/echo-server.js
    replicas: 3
    health: {path: /healthz, interval: 200ms}
    policy:
      retries: {attempts: 2, on: [5xx], backoff: {base: 5ms, max: 20ms}}
      # Short ejections: the test looks for one ejection and one return, not at their length.
      outlierDetection: {consecutive5xxErrors: 3, interval: 200ms, baseEjectionTime: 1s, maxEjectionPercent: 50}
  broken:
    simulate: {latency: 1ms, errorRate: 1, errorStatus: 503, seed: 1}
    policy:
      retries: {attempts: 3, on: [5xx], backoff: {base: 1ms, max: 2ms}, budget: {ratio: 0.2, minPerSecond: 1}}
  slow:
    simulate: {latency: 1500ms}
    policy:
      timeout: 300ms
  trickle:
    simulate: {latency: 1ms, responseSize: 16kb}
    policy:
      timeout: 300ms
  limited:
    simulate: {latency: 1ms}
    policy:
      rateLimit: {algorithm: token-bucket, rate: 50/s, burst: 5}
  rr:
    command: node fixtures/echo-server.js
    replicas: 3
    health: {path: /healthz, interval: 200ms}
  split:
    versions:
      v1: {simulate: {latency: 1ms}}
      v2: {simulate: {latency: 1ms}}
    policy:
      weights: {v1: 90, v2: 10}
  hash:
    command: node fixtures/echo-server.js
    replicas: 4
    health: {path: /healthz, interval: 200ms, unhealthyThreshold: 1}
    policy:
      loadBalancer: {type: ring-hash, hashOn: {header: x-user}}
  breaker:
    simulate: {latency: 1s}
    policy:
      circuitBreaker: {maxConnections: 2, maxPendingRequests: 1, maxRequests: 10}
`,
    ))
  })

  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  const service = async (name: string) => (await status(dir)).services.find((s) => s.name === name)!

  test('one of three instances answering 500: retries and outlier ejection keep ≥ 99.9% success; it is ejected, then readmitted', async () => {
    const sick = (await service('api')).instances[0]
    await get(`http://${sick.address}/toggle-fail`)
    const results = await sendMany(`${ingress}/api`, 1000, 16)
    const ok = results.filter((r) => r.status === 200).length
    expect(ok / results.length, JSON.stringify(results.filter((r) => r.status !== 200))).toBeGreaterThanOrEqual(0.999)
    expect(results.filter((r) => r.instance === sick.instance && r.status === 200)).toEqual([])
    // Keep traffic flowing while we look, so a slow machine cannot let the ejection lapse unseen.
    let stop = false
    const trickle = (async () => {
      while (!stop) await sendMany(`${ingress}/api`, 20, 4)
    })()
    const seen = await eventually(async () => {
      const [text, api] = await Promise.all([mesh(dir, ['status']), service('api')])
      const inst = api.instances.find((i) => i.instance === sick.instance)!
      return inst.ejected?.reason === 'consecutive-5xx' && /api-v1-0 .*ejected \(consecutive-5xx\)/.test(text.stdout) ? text.stdout : undefined
    }, 20_000)
    stop = true
    const trickled = (await trickle, results.length)
    expect(seen, 'status never showed api-v1-0 ejected').toBeDefined()
    expect(trickled).toBe(1000)
    // It recovers; after its ejection time it is back in rotation and serves again.
    await get(`http://${sick.address}/toggle-fail`)
    const back = await eventually(async () => (await service('api')).instances.find((x) => x.instance === sick.instance)!.ejected === undefined, 15_000)
    expect(back).toBe(true)
    const after = await sendMany(`${ingress}/api`, 60, 4)
    expect(after.every((r) => r.status === 200)).toBe(true)
    expect(after.some((r) => r.instance === sick.instance)).toBe(true)
  })

  test('against a service failing 100%, retries stay within the retry budget; a slow one times out with 504 UT; a body still streaming at the deadline is cut', async () => {
    const n = 200
    const sent = performance.now()
    const results = await sendMany(`${ingress}/broken`, n, 8)
    const windows = Math.ceil((performance.now() - sent) / 10_000) + 1
    expect(countBy(results, (r) => String(r.status))).toEqual({503: n})
    // Every attempt reached the service, so its own request count is requests + retries.
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh/state.json'), 'utf8'))
    const metrics = (await get(`${state.controlUrl}/metrics`)).text
    const attempts = sumSeries(metrics, 'istio_requests_total', {reporter: 'destination', destination_service: 'broken'})
    const retries = attempts - n
    // Linkerd's rule over each 10 s window: retries ≤ ratio × requests + minPerSecond × 10. A loaded
    // machine stretches the run over several windows (one more for the bucket ring's edges), each
    // with its reserve of 10.
    expect(retries).toBeGreaterThan(0)
    expect(retries).toBeLessThanOrEqual(0.2 * n + 1 * 10 * windows)
    // Without the budget, 3 retries each would have made 800 attempts.
    expect(attempts).toBeLessThan(n * 1.2 + 10 * windows + 1)

    const t0 = performance.now()
    const slow = await get(`${ingress}/slow`)
    const elapsed = performance.now() - t0
    expect(slow.status).toBe(504)
    expect(slow.headers['x-mesh-response-flags']).toBe('UT')
    expect(slow.headers['x-mesh-reason']).toContain('300 ms timeout')
    // 504 UT already says the timer fired before the 1500 ms service answered.
    expect(elapsed).toBeGreaterThanOrEqual(290)

    // The headers come at once, then the body at 2 KB/s (8 s): the overall timeout cuts it,
    // as Envoy's route timeout does; the client sees a reset, the caller's span says UT.
    expect((await mesh(dir, ['inject-fault', 'trickle', '--bandwidth', '2kb/s'])).exitCode).toBe(0)
    const cut = await new Promise<{status: number; bytes: number; error?: string}>((resolve) => {
      let status = 0
      let bytes = 0
      const failed = (e: Error) => resolve({status, bytes, error: (e as NodeJS.ErrnoException).code ?? e.message})
      http
        .get(`${ingress}/trickle`, (res) => {
          status = res.statusCode!
          res.on('data', (c: Buffer) => (bytes += c.length))
          res.on('end', () => resolve({status, bytes}))
          res.on('error', failed)
        })
        // The reset can reach the request as well as the response (whichever node:http reads it on).
        .on('error', failed)
    })
    expect(cut.status).toBe(200)
    expect(cut.error).toBeDefined()
    expect(cut.bytes).toBeLessThan(16 * 1024)
    const afterCut = (await get(`${state.controlUrl}/metrics`)).text
    expect(sumSeries(afterCut, 'istio_requests_total', {reporter: 'source', destination_service: 'trickle', response_flags: 'UT'})).toBe(1)
  })

  test('a 50/s rate limit driven at 200/s for 3 s admits about 150 and answers the rest 429 with Retry-After', async () => {
    const {runLoad} = await import('../../src/sim/load/load-generator.js')
    const result = await runLoad({target: `${ingress}/limited`, rps: 200, durationMs: 3000})
    const admitted = result.statuses['200'] ?? 0
    // A token bucket cannot admit more than burst + rate × the time the load took
    // (a busy machine stretches that time, so the bound comes from the run itself).
    expect(admitted).toBeLessThanOrEqual(5 + Math.ceil((50 * result.durationMs) / 1000) + 1)
    expect(admitted).toBeGreaterThanOrEqual(135)
    const limited = await sendMany(`${ingress}/limited`, 30, 30)
    const rejected = limited.filter((r) => r.status === 429)
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) {
      expect(r.flags).toBe('RL')
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
    }
  })

  test('round robin spreads evenly; weights 90/10 hold; ring-hash keeps keys and moves about 1/N when one leaves', async () => {
    // A path no route takes: the mesh says so itself, and which routes there are.
    const unrouted = await get(`${ingress}/nowhere?x=1`)
    expect(unrouted.status).toBe(404)
    expect(unrouted.headers['x-mesh-response-flags']).toBe('NR')
    expect(unrouted.headers['x-mesh-reason']).toContain('(routes: /api -> api, /broken -> broken')
    expect(unrouted.text).toContain(
      'no ingress route matches path /nowhere (routes: /api -> api, /broken -> broken, /slow -> slow, /trickle -> trickle, /limited -> limited, /rr -> rr, /split -> split, /hash -> hash, /breaker -> breaker)',
    )
    const rr = countBy(await sendMany(`${ingress}/rr`, 3000, 24), (r) => r.instance)
    expect(Object.keys(rr).sort()).toEqual(['rr-v1-0', 'rr-v1-1', 'rr-v1-2'])
    for (const n of Object.values(rr)) expect(Math.abs(n - 1000)).toBeLessThanOrEqual(50)

    const split = countBy(await sendMany(`${ingress}/split`, 2000, 24), (r) => r.instance?.split('-')[1])
    expect(Math.abs(split.v1 / 2000 - 0.9)).toBeLessThanOrEqual(0.03)
    expect(Math.abs(split.v2 / 2000 - 0.1)).toBeLessThanOrEqual(0.03)

    const keys = Array.from({length: 400}, (_, i) => `user-${i}`)
    const owner = async () => {
      const results = await Promise.all(keys.map(async (k) => (await get(`${ingress}/hash`, {'x-user': k})).headers['x-mesh-upstream'] as string))
      return new Map(keys.map((k, i) => [k, results[i]]))
    }
    const first = await owner()
    const again = await owner()
    expect([...again]).toEqual([...first])
    // One of four instances leaves (fails its health check): only its keys move.
    const leaving = (await service('hash')).instances[0]
    await get(`http://${leaving.address}/toggle-health`)
    expect(await eventually(async () => !(await service('hash')).instances[0].registered)).toBe(true)
    const after = await owner()
    const moved = keys.filter((k) => after.get(k) !== first.get(k))
    expect(moved.every((k) => first.get(k) === leaving.instance)).toBe(true)
    expect(moved.length / keys.length).toBeGreaterThan(0.1)
    expect(moved.length / keys.length).toBeLessThan(0.45)
  })

  test('a circuit-breaker limit answers 503 UO at once instead of queueing; under the limit all pass', async () => {
    // 2 in service + 1 pending fit; the other 5 of 8 concurrent requests overflow.
    const results = await sendMany(`${ingress}/breaker`, 8, 8)
    const overflow = results.filter((r) => r.status === 503)
    expect(overflow.length).toBe(5)
    for (const r of overflow) expect(r.flags).toBe('UO')
    const served = results.filter((r) => r.status === 200)
    expect(served.length).toBe(3)
    // Answered at once, not queued behind the 1 s the service takes: every overflow
    // reply came back before the first served one.
    expect(Math.max(...overflow.map((r) => r.ms))).toBeLessThan(Math.min(...served.map((r) => r.ms)))
    expect((await sendMany(`${ingress}/breaker`, 2, 2)).map((r) => r.status)).toEqual([200, 200])
  })
})

describe('mesh apply', () => {
  test('mesh apply changes a weight under load with no failed request, and says what changed', async () => {
    const port = await freePort()
    const yaml = (w1: number, w2: number) => `
name: apply
ingress: {port: ${port}, routes: [{prefix: /, service: split}]}
services:
  split:
    versions:
      v1: {simulate: {latency: 2ms}}
      v2: {simulate: {latency: 2ms}}
    policy:
      weights: {v1: ${w1}, v2: ${w2}}
`
    const dir = meshDir(yaml(100, 0))
    try {
      expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
      const before = countBy(await sendMany(`http://127.0.0.1:${port}/`, 100, 8), (r) => r.instance?.split('-')[1])
      expect(before).toEqual({v1: 100})
      const load = sendMany(`http://127.0.0.1:${port}/`, 1500, 8)
      await new Promise((r) => setTimeout(r, 300))
      writeFileSync(path.join(dir, 'mesh.yaml'), yaml(0, 100))
      const applied = await mesh(dir, ['apply'])
      expect(applied.exitCode, applied.stderr).toBe(0)
      expect(applied.stdout).toMatch(/applied split: policy\.weights \{"v1":100,"v2":0\} → \{"v1":0,"v2":100\}/)
      const during = await load
      expect(during.filter((r) => r.status !== 200)).toEqual([])
      const after = countBy(await sendMany(`http://127.0.0.1:${port}/`, 100, 8), (r) => r.instance?.split('-')[1])
      expect(after).toEqual({v2: 100})
      const st = await status(dir)
      expect(st.services[0].versions.map((v) => v.weight)).toEqual([0, 100])
    } finally {
      await mesh(dir, ['down'])
    }
  })

  test('mesh apply adds a version with its share of traffic, then removes the old one, under load, with no failed request; new ingress routes apply too', async () => {
    const port = await freePort()
    const header = (routes: string) => `
name: applyver
ingress: {port: ${port}, routes: [${routes}]}
services:
  other: {simulate: {latency: 1ms}}
  svc:
    versions:`
    const head = header('{prefix: /, service: svc}')
    const dir = meshDir(`${head}\n      v1: {simulate: {latency: 2ms}}\n`)
    try {
      expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
      const load = sendUntilStopped(`http://127.0.0.1:${port}/`)
      await new Promise((r) => setTimeout(r, 300))
      writeFileSync(path.join(dir, 'mesh.yaml'), `${head}\n      v1: {simulate: {latency: 2ms}}\n      v2: {replicas: 2, simulate: {latency: 2ms}}\n    policy: {weights: {v1: 50, v2: 50}}\n`)
      const added = await mesh(dir, ['apply'])
      expect(added.exitCode, added.stderr).toBe(0)
      expect(added.stdout).toContain('applied svc: v2 added')
      expect(added.stdout).toContain('applied svc: started 2 instances of v2')
      const split = countBy(await sendMany(`http://127.0.0.1:${port}/`, 200, 4), (r) => r.instance?.split('-')[1])
      expect(split.v2).toBeGreaterThan(60)
      expect(split.v1).toBeGreaterThan(60)

      writeFileSync(path.join(dir, 'mesh.yaml'), `${head}\n      v2: {replicas: 2, simulate: {latency: 2ms}}\n`)
      const removed = await mesh(dir, ['apply'])
      expect(removed.exitCode, removed.stderr).toBe(0)
      expect(removed.stdout).toContain('applied svc: v1 removed: svc-v1-0 drained and stopped')
      const sent = await load.stop()
      expect(sent.filter((r) => r.status !== 200)).toEqual([])
      const st = (await status(dir)).services.find((x) => x.name === 'svc')!
      expect(st.versions.map((v) => v.name)).toEqual(['v2'])
      expect(st.instances.map((i) => i.instance).sort()).toEqual(['svc-v2-0', 'svc-v2-1'])

      expect((await get(`http://127.0.0.1:${port}/other`)).headers['x-mesh-upstream']).toMatch(/^svc-v2-/)
      writeFileSync(path.join(dir, 'mesh.yaml'), `${header('{prefix: /, service: svc}, {prefix: /other, service: other}')}\n      v2: {replicas: 2, simulate: {latency: 2ms}}\n`)
      const routed = await mesh(dir, ['apply'])
      expect(routed.stdout).toContain('applied ingress: routes / → svc ⇒ / → svc, /other → other')
      expect((await get(`http://127.0.0.1:${port}/other`)).headers['x-mesh-upstream']).toBe('other-v1-0')
      expect((await status(dir)).ingress?.routes).toEqual([{prefix: '/', service: 'svc'}, {prefix: '/other', service: 'other'}])
    } finally {
      await mesh(dir, ['down'])
    }
  })

  test('mesh apply adds a service behind a new route and removes one, while another serves load with no failed request; two applies at once take turns', async () => {
    const port = await freePort()
    const dir = meshDir(`
name: applysvc
ingress: {port: ${port}, routes: [{prefix: /, service: a}, {prefix: /b, service: b}]}
services:
  a: {simulate: {latency: 2ms}}
  b: {simulate: {latency: 2ms}}
  e: {dependsOn: [f], simulate: {}}
  f: {simulate: {}}
`)
    try {
      expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
      expect((await mesh(dir, ['inject-fault', 'b', '--delay', '10ms'])).exitCode).toBe(0)
      const load = sendUntilStopped(`http://127.0.0.1:${port}/`)
      writeFileSync(
        path.join(dir, 'mesh.yaml'),
        `
name: applysvc
ingress: {port: ${port}, routes: [{prefix: /, service: a}, {prefix: /c, service: c}]}
services:
  a: {simulate: {latency: 2ms}}
  c: {replicas: 2, command: node fixtures/echo-server.js, env: {LISTEN_AFTER_MS: '1500'}}
  e: {simulate: {}}
`,
      )
      // --dry-run says what apply would do, and changes nothing.
      const dry = await mesh(dir, ['apply', '--dry-run'])
      expect(dry.exitCode, dry.stderr).toBe(0)
      expect(dry.stdout.split('\n').filter((l) => l.startsWith('would'))).toEqual([
        'would apply service c added: 2 instances started (healthy before apply returns)',
        'would apply ingress: routes / → a, /b → b ⇒ / → a, /c → c',
        'would apply service b removed: 1 instance drained and stopped',
        'would not apply e: dependsOn changed: restart the mesh (`mesh down && mesh up`) or use a deploy for that',
        'would not apply service f was removed, but e still runs with it in dependsOn: restart the mesh (`mesh down && mesh up`) for that',
      ])
      expect(dry.stdout).toContain('Dry run: nothing changed.')
      expect((await status(dir)).services.map((x) => x.name)).toEqual(['a', 'b', 'e', 'f'])
      expect((await get(`http://127.0.0.1:${port}/b`)).headers['x-mesh-upstream']).toBe('b-v1-0')
      // Two at once (an editor's save hook and a hand): the daemon takes them one after the
      // other, so the second finds c added and b gone rather than removing b again while the
      // first waits for c's slow start.
      const both = await Promise.all([mesh(dir, ['apply']), mesh(dir, ['apply'])])
      const sent = await load.stop()
      const applied = both.find((r) => r.stdout.includes('service c added')) ?? both[0]
      const again = both.find((r) => r !== applied)!
      expect(applied.exitCode, applied.stderr).toBe(0)
      expect(again.exitCode, again.stderr).toBe(0)
      expect(again.stdout).not.toMatch(/service c added|service b removed/)
      expect(applied.stdout).toContain('applied service c added: c-v1-0, c-v1-1 healthy')
      expect(applied.stdout).toContain('applied service b removed: b-v1-0 drained and stopped')
      expect(applied.stdout).toContain('not applied e: dependsOn changed: restart the mesh (`mesh down && mesh up`) or use a deploy for that')
      expect(applied.stdout).toContain('not applied service f was removed, but e still runs with it in dependsOn: restart the mesh (`mesh down && mesh up`) for that')
      expect(sent.filter((r) => r.status !== 200)).toEqual([])
      expect((await get(`http://127.0.0.1:${port}/c`)).headers['x-mesh-upstream']).toMatch(/^c-v1-[01]$/)
      // /b now falls to the / route.
      expect((await get(`http://127.0.0.1:${port}/b`)).headers['x-mesh-upstream']).toBe('a-v1-0')
      expect((await status(dir)).services.map((x) => x.name)).toEqual(['a', 'e', 'f', 'c'])
      // b's fault went with it.
      expect(JSON.parse((await mesh(dir, ['faults', '--json'])).stdout)).toEqual([])
    } finally {
      await mesh(dir, ['down'])
    }
  })

  test('mesh apply scales a version and replaces processes whose simulation changed, under load, with no failed request', async () => {
    const port = await freePort()
    const yaml = (replicas: number, latency: string) => `
name: applyinst
ingress: {port: ${port}, routes: [{prefix: /, service: svc}]}
services:
  svc:
    replicas: ${replicas}
    simulate: {latency: ${latency}}
`
    const dir = meshDir(yaml(1, '2ms'))
    try {
      expect((await mesh(dir, ['up', '-d'])).exitCode).toBe(0)
      const [first] = (await status(dir)).services[0].instances
      const load = sendUntilStopped(`http://127.0.0.1:${port}/`)
      await new Promise((r) => setTimeout(r, 300))
      writeFileSync(path.join(dir, 'mesh.yaml'), yaml(3, '3ms'))
      const applied = await mesh(dir, ['apply'])
      expect(applied.exitCode, applied.stderr).toBe(0)
      expect(applied.stdout).toMatch(/applied svc: v1 simulate changed: its 1 instance is being replaced one at a time \(d1; follow with `mesh history svc`\); scaled 1 → 3/)
      const restarted = await eventually(async () => {
        const [record] = JSON.parse((await mesh(dir, ['history', 'svc', '--json'])).stdout)
        return record?.outcome === 'restarted' ? record : undefined
      })
      expect(restarted, 'the restart never finished').toBeDefined()
      const sent = await load.stop()
      expect(sent.filter((r) => r.status !== 200)).toEqual([])
      expect(sent.length).toBeGreaterThan(100)
      const instances = (await status(dir)).services[0].instances
      expect(instances).toHaveLength(3)
      expect(instances.map((i) => i.instance)).not.toContain(first.instance)
      // Applied once: the same mesh.yaml again changes nothing.
      expect((await mesh(dir, ['apply'])).stdout).toMatch(/No changes: the mesh runs as mesh.yaml says/)
      // And back down: the extra instances are drained.
      writeFileSync(path.join(dir, 'mesh.yaml'), yaml(1, '3ms'))
      expect((await mesh(dir, ['apply'])).stdout).toMatch(/applied svc: v1 scaled 3 → 1/)
      expect((await status(dir)).services[0].instances).toHaveLength(1)
    } finally {
      await mesh(dir, ['down'])
    }
  })
})
