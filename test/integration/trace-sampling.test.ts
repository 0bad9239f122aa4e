// Trace sampling as a user meets it: under load the store keeps a sample of whole
// traces and every failed one, metrics still count every request, and `mesh traces`
// says it is sampling. A low `spansPerSecond` makes a modest load "busy".
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {LoadResult} from '../../src/sim/load/load-generator.js'
import type {StatRow} from '../../src/sim/telemetry/metrics.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {downMesh, get, json, mesh, upMesh} from '../helpers/mesh.js'

const yaml = (port: number, spansPerSecond = 20) => `
name: sampling
telemetry: {sampling: {spansPerSecond: ${spansPerSecond}}}
ingress:
  port: ${port}
  routes:
    - {prefix: /ok, service: ok}
    - {prefix: /oops, service: oops}
services:
  ok:
    simulate: {latency: 1ms, seed: 1}
  oops:
    simulate: {latency: 1ms, errorRate: 1, seed: 2}
`

describe('trace sampling under load', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  })

  afterAll(() => downMesh(dir))

  test('a quiet mesh keeps every trace and says nothing about sampling', async () => {
    for (let i = 0; i < 3; i++) expect((await get(`${ingress}/ok`)).status).toBe(200)
    const traces = json<TraceSummary[]>(await mesh(dir, ['traces', '--json']))
    expect(traces).toHaveLength(3)
    const text = await mesh(dir, ['traces'])
    expect(text.stdout).not.toMatch(/Sampled/)
  })

  test('busy: a sample of whole traces, every failed one, every request in the metrics, and a note', async () => {
    // 100 calls a second for 5 s is 200 spans a second, ten times the 20 the store takes in.
    const loading = mesh(dir, ['load', 'ok', '--rps', '100', '--duration', '5s', '--json'])
    // Failed calls while it is busy: each must be kept.
    await new Promise((r) => setTimeout(r, 2500))
    for (let i = 0; i < 5; i++) expect((await get(`${ingress}/oops`)).status).toBe(500)
    const load = json<LoadResult>(await loading)
    expect(load.errors).toEqual({})
    expect(load.statuses['200']).toBe(load.requests)

    const traces = json<TraceSummary[]>(await mesh(dir, ['traces', '--json', '--limit', '1000']))
    const ok = traces.filter((t) => t.services.includes('ok'))
    const failed = traces.filter((t) => t.services.includes('oops'))
    expect(failed).toHaveLength(5)
    // The rate is judged on the second before, so up to two seconds are kept whole (a partial
    // first second is quiet); after that about 10%: at most ~230 of 500.
    expect(ok.length).toBeLessThan(load.requests * 0.6)
    expect(ok.length).toBeGreaterThan(3)
    for (const t of [...ok, ...failed]) expect(t.spanCount).toBe(2)

    const rows = json<StatRow[]>(await mesh(dir, ['stat', '--json', '--window', '1m']))
    const okRow = rows.find((r) => r.service === 'ok')
    expect(okRow?.requests).toBe(load.requests + 3)

    const text = await mesh(dir, ['traces'])
    expect(text.exitCode).toBe(0)
    expect(text.stdout).toMatch(/Sampled: .*telemetry\.sampling\.spansPerSecond: 20.*failed spans are always kept/)
  })

  test('`mesh apply` changes the rate without a restart', async () => {
    writeFileSync(path.join(dir, 'mesh.yaml'), yaml(Number(new URL(ingress).port), 1000))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr).toBe(0)
    expect(applied.stdout).toContain('telemetry: trace sampling 20 → 1000 spans/s')
    const again = await mesh(dir, ['apply'])
    expect(again.stdout).not.toContain('trace sampling')
  })
})
