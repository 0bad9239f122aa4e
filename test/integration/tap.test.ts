// `mesh tap`, as `linkerd viz tap`: the requests going through the mesh, live, one per line.
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {TapEvent} from '../../src/sim/telemetry/tap.js'
import {BIN, downMesh, get, mesh, upMesh} from '../helpers/mesh.js'

describe('mesh tap', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: tapping
ingress: {port: ${port}, routes: [{prefix: /flaky, service: flaky}, {prefix: /, service: front}]}
services:
  front:
    simulate: {latency: 1ms, calls: [{service: api, path: /data}]}
  api:
    replicas: 2
    simulate: {latency: 1ms}
  flaky:
    simulate: {latency: 1ms, errorRate: 1, errorStatus: 503}
`,
    ))
  })

  afterAll(() => downMesh(dir))

  /** Runs `mesh tap ARGS` while requests go to `paths` in turn; tap stops itself (--count). */
  async function tapWhileSending(args: string[], paths: string[]) {
    const tap = execa('node', [BIN, 'tap', ...args], {cwd: dir, env: {NO_COLOR: '1'}, reject: false, timeout: 30_000})
    let done = false
    void tap.finally(() => (done = true))
    // Requests until the tap has seen its count: those sent before its stream opened go unseen.
    const deadline = Date.now() + 25_000
    for (let i = 0; !done && Date.now() < deadline; i++) await get(`${ingress}${paths[i % paths.length]}`)
    const r = await tap
    return {exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr)}
  }

  test('--json: one object per request to or from the service, with the instance that served it', async () => {
    const r = await tapWhileSending(['api', '--count', '3', '--json'], ['/'])
    expect(r.exitCode, r.stderr).toBe(0)
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as TapEvent)
    expect(events).toHaveLength(3)
    for (const e of events) {
      expect(e).toMatchObject({source: 'front', destination: 'api', version: 'v1', method: 'GET', path: '/data', status: 200})
      expect(e.instance).toMatch(/^api-v1-[01]$/)
      expect(e.traceId).toMatch(/^[0-9a-f]{32}$/)
    }
  })

  test('--errors shows only failed requests; text lines read like the access log', async () => {
    const failed = await tapWhileSending(['--errors', '--count', '2', '--json'], ['/', '/flaky'])
    expect(failed.exitCode, failed.stderr).toBe(0)
    const events = failed.stdout.trim().split('\n').map((l) => JSON.parse(l) as TapEvent)
    expect(events.map((e) => [e.source, e.destination, e.status])).toEqual([
      ['ingress', 'flaky', 503],
      ['ingress', 'flaky', 503],
    ])
    const text = await tapWhileSending(['--from', 'ingress', '--to', 'front', '--count', '1'], ['/hello'])
    expect(text.exitCode, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}ingress → front-v1-0 {2}GET \/hello {2}200 {2}\S+ {2}- {2}[0-9a-f]{12}$/)
    expect(text.stderr).toContain('tapping from ingress, to front; stops after 1 request (or Ctrl-C)')
  })

  test('an unknown service is an error before anything is streamed', async () => {
    const r = await mesh(dir, ['tap', 'fornt'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('service "fornt" is not in the mesh; did you mean "front"?')
  })
})
