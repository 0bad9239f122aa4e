// When load stops — a canary's --load at the end of the deploy, `mesh load` on Ctrl-C —
// nothing more is sent and the requests in flight finish: the mesh sees no client hang
// up, so no 499 (DC) lands in its traces. The service answers in 300 ms, so at 40
// requests/s a dozen are always in flight when the load stops.
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {BIN, downMesh, eventually, json, mesh, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: load-stop
ingress:
  port: ${port}
  routes: [{prefix: /slow, service: slow}]
services:
  slow:
    versions:
      v1: {simulate: {latency: 300ms, seed: 1}}
      v2: {simulate: {latency: 300ms, seed: 2}}
`

describe('stopping load leaves no client-closed requests', () => {
  let dir = ''
  beforeAll(async () => {
    ;({dir} = await upMesh(yaml))
  })
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

  const traces = async () => json<TraceSummary[]>(await mesh(dir, ['traces', '--json', '--limit', '100000']))
  /** Every request the mesh saw is over, and none was cut off by its caller. */
  const expectNoHangUp = async (atLeast: number) => {
    const all = await eventually(async () => {
      const t = await traces()
      return t.length >= atLeast && t.every((x) => x.complete) ? t : undefined
    }, 10_000)
    expect(all, 'the requests in flight never finished').toBeDefined()
    expect(all!.filter((t) => t.status === 499 || t.errorSpans > 0)).toEqual([])
    expect(all!.every((t) => t.status === 200)).toBe(true)
    return all!.length
  }

  test('a canary with --load: when the deploy ends, the load stops without cutting off what it sent', async () => {
    const r = await mesh(dir, ['canary', 'slow', '--to', 'v2', '--steps', '100', '--interval', '1s', '--min-requests', '1', '--load', '40'])
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
    await expectNoHangUp(20)
  }, 60_000)

  test('mesh load stopped by Ctrl-C: nothing more is sent, and the requests in flight finish', async () => {
    const before = (await traces()).length
    const load = execa('node', [BIN, 'load', 'slow', '--rps', '40', '--duration', '60s', '--json'], {cwd: dir, reject: false, env: {NO_COLOR: '1'}})
    // Under way: some requests answered, more in flight.
    expect(await eventually(async () => (await traces()).length >= before + 10, 20_000)).toBe(true)
    load.kill('SIGINT')
    const done = await load
    expect(done.exitCode, String(done.stderr)).toBe(0)
    const result = JSON.parse(String(done.stdout)) as {aborted: boolean; sent: number; requests: number; errors: Record<string, number>}
    expect(result.aborted).toBe(true)
    expect(result.requests).toBe(result.sent)
    expect(result.errors).toEqual({})
    const total = await expectNoHangUp(before + result.sent)
    expect(total).toBe(before + result.sent)
  }, 60_000)
})
