// Lambda's concurrency limits on a real mesh, enforced by the sidecar's activator:
// containerConcurrency 1 at maxScale with no queue serves exactly one request per
// instance and throttles the rest (429 TH); an account limit caps two services' sum; a
// client that leaves while held gives its place back; a service at zero answers its
// first request after a cold start, with x-mesh-cold-start. Then scaling.reservedConcurrency,
// as Lambda's: a version's reservation is guaranteed to it (the others cannot take it, even
// when they are refused) and is also its cap; the others share what the account has left;
// `mesh apply` moves both live. Simulated services; one mesh for the file (the reservations
// are applied to it once the first part is done); about 90 requests in all.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, get, json, mesh, sendMany, type Sent, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: concurrency-limits
functions: {accountConcurrency: 4}
ingress:
  port: ${port}
  routes:
    - {prefix: /single, service: single}
    - {prefix: /orders, service: orders}
    - {prefix: /payments, service: payments}
    - {prefix: /queued, service: queued}
    - {prefix: /cold, service: cold}
    - {prefix: /checkout, service: checkout}
    - {prefix: /reports, service: reports}
services:
  single:
    simulate: {latency: 1500ms}
    scaling: {minScale: 3, maxScale: 3, containerConcurrency: 1, queue: 0}
  orders:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0}
  payments:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0}
  queued:
    simulate: {latency: 3s}
    scaling: {minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 1}
  cold:
    simulate: {latency: 10ms}
    scaling: {minScale: 0, initialScale: 0, maxScale: 1, containerConcurrency: 1}
  # One instance each that takes any number (containerConcurrency 0), and no queue: only the
  # account and the reservation decide who is served.
  checkout:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0}
  reports:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0}
`

const byStatus = (sent: Sent[]) => sent.reduce<Record<number, number>>((n, s) => ({...n, [s.status]: (n[s.status] ?? 0) + 1}), {})
const throttled = (sent: Sent[]) => sent.filter((s) => s.status === 429).every((s) => s.flags === 'TH')

let dir = ''
let ingress = ''
beforeAll(async () => {
  ;({dir, ingress} = await upMesh(yaml))
}, 60_000)
afterAll(async () => {
  if (dir) await downMesh(dir)
})

describe('concurrency limits and the activator', () => {
  // The control API straight (a CLI run per poll would be slower than the requests it watches).
  let control: ControlClient
  const activatorLoad = async () => {
    control ??= new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)
    const status = await control.status()
    return Object.fromEntries(status.services.map((s) => [s.name, s.load?.activator?.v1]))
  }

  test('containerConcurrency 1, maxScale 3, queue 0: 10 at once → 3 served, one per instance; 7 throttled 429 TH', async () => {
    const sent = await sendMany(`${ingress}/single`, 10, 10)
    expect(byStatus(sent)).toEqual({200: 3, 429: 7})
    expect(new Set(sent.filter((s) => s.status === 200).map((s) => s.instance)).size).toBe(3)
    expect(sent.filter((s) => s.status === 429).every((s) => s.flags === 'TH')).toBe(true)
    // Every slot given back: the next one is served.
    expect((await get(`${ingress}/single`)).status).toBe(200)
    const throttled = await Promise.all(Array.from({length: 4}, () => get(`${ingress}/single`)))
    const one = throttled.find((r) => r.status === 429)!
    expect(one.headers['x-mesh-reason']).toBe('throttled: concurrency limit: "single" v1 runs 3 of maxScale 3 instances, busy with 1 request each (containerConcurrency), and its queue of 0 is full (scaling.queue)')
    expect((await activatorLoad()).single).toEqual({inFlight: 0, held: 0})
  }, 30_000)

  test('functions.accountConcurrency 4 caps the requests in flight across two services at 4', async () => {
    const both = Promise.all([sendMany(`${ingress}/orders`, 6, 6), sendMany(`${ingress}/payments`, 6, 6)])
    // While they run: the two services' in-flight sum, as the activator counts it.
    const during = await eventually(async () => {
      const load = await activatorLoad()
      const sum = load.orders!.inFlight + load.payments!.inFlight
      return sum > 0 ? sum : undefined
    }, 10_000, 50)
    const [orders, payments] = await both
    expect(during).toBeLessThanOrEqual(4)
    const all = [...orders, ...payments]
    expect(byStatus(all)).toEqual({200: 4, 429: 8})
    expect(all.filter((s) => s.status === 429).every((s) => s.flags === 'TH')).toBe(true)
    const load = await activatorLoad()
    expect([load.orders, load.payments]).toEqual([{inFlight: 0, held: 0}, {inFlight: 0, held: 0}])
  }, 30_000)

  test('a client that leaves while held gives its place back: a later request is held and served', async () => {
    const busy = get(`${ingress}/queued`)
    await eventually(async () => (await activatorLoad()).queued!.inFlight === 1, 10_000, 50)
    const controller = new AbortController()
    const leaving = request(`${ingress}/queued`, {signal: controller.signal}).catch((e: Error) => e)
    await eventually(async () => (await activatorLoad()).queued!.held === 1, 10_000, 50)
    controller.abort()
    expect(await leaving).toBeInstanceOf(Error)
    await eventually(async () => (await activatorLoad()).queued!.held === 0, 10_000, 50)
    // Its place in the queue of 1 is free again: this one waits there rather than being throttled.
    const later = get(`${ingress}/queued`)
    expect((await busy).status).toBe(200)
    const served = await later
    expect(served.status).toBe(200)
    expect(served.headers['x-mesh-cold-start']).toBeUndefined()
    expect((await activatorLoad()).queued).toEqual({inFlight: 0, held: 0})
  }, 30_000)

  test('a service at zero: the first request is held while an instance cold-starts, then served with x-mesh-cold-start', async () => {
    const before = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(before.services.find((s) => s.name === 'cold')!.instances).toEqual([])
    const first = await get(`${ingress}/cold`)
    expect(first.status).toBe(200)
    const ms = Number(first.headers['x-mesh-cold-start'])
    expect(ms).toBeGreaterThan(0)
    expect(ms).toBeLessThan(20_000)
    const warm = await get(`${ingress}/cold`)
    expect(warm.status).toBe(200)
    expect(warm.headers['x-mesh-cold-start']).toBeUndefined()
  }, 40_000)
})

describe('reservedConcurrency', () => {
  const file = () => path.join(dir, 'mesh.yaml')
  // The account of 3 with 2 of it reserved for checkout, applied to the running mesh (every service idle).
  beforeAll(async () => {
    writeFileSync(file(), readFileSync(file(), 'utf8').replace('accountConcurrency: 4', 'accountConcurrency: 3').replace('maxScale: 1, queue: 0}\n  reports', 'maxScale: 1, queue: 0, reservedConcurrency: 2}\n  reports'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('functions: accountConcurrency 4 → 3')
  }, 60_000)

  test('reserved 2 of an account of 3: checkout gets its 2 while reports, refused past the 1 left, cannot take them', async () => {
    const [reports, checkout] = await Promise.all([sendMany(`${ingress}/reports`, 4, 4), sendMany(`${ingress}/checkout`, 2, 2)])
    expect(byStatus(reports)).toEqual({200: 1, 429: 3})
    expect(byStatus(checkout)).toEqual({200: 2})
    expect(throttled(reports)).toBe(true)
    const refused = await Promise.all([get(`${ingress}/reports`), get(`${ingress}/reports`)])
    expect(refused.map((r) => r.headers['x-mesh-reason'])).toContain(
      'throttled: concurrency limit: "reports" v1: the account\'s concurrency limit of 3 is in use (functions.accountConcurrency, 2 of it reserved for other versions) and its queue of 0 is full (scaling.queue)',
    )
  }, 30_000)

  test('the reservation is also a cap: 3 at once to checkout → 2 served, 1 throttled, though the account has room', async () => {
    const sent = await sendMany(`${ingress}/checkout`, 3, 3)
    expect(byStatus(sent)).toEqual({200: 2, 429: 1})
    expect(throttled(sent)).toBe(true)
  }, 30_000)

  test('mesh apply moves the reservation and the account limit live: reserved 1 of 4 leaves reports 3', async () => {
    writeFileSync(file(), readFileSync(file(), 'utf8').replace('accountConcurrency: 3', 'accountConcurrency: 4').replace('reservedConcurrency: 2', 'reservedConcurrency: 1'))
    const applied = await mesh(dir, ['apply'])
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toContain('functions: accountConcurrency 3 → 4')
    expect(applied.stdout).toContain('checkout: v1 scaling changed')
    expect(applied.stdout + applied.stderr).not.toMatch(/restart the mesh/)
    const [reports, checkout] = await Promise.all([sendMany(`${ingress}/reports`, 4, 4), sendMany(`${ingress}/checkout`, 2, 2)])
    expect(byStatus(reports)).toEqual({200: 3, 429: 1})
    expect(byStatus(checkout)).toEqual({200: 1, 429: 1})
    expect(throttled([...reports, ...checkout])).toBe(true)
  }, 30_000)
})
