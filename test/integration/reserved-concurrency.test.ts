// scaling.reservedConcurrency on a real mesh, as Lambda's: a version's reservation is
// guaranteed to it (the others cannot take it, even when they are refused) and is also its
// cap; the others share what the account has left. `mesh apply` moves both live. Simulated
// services; one mesh for the file; about 30 requests in all.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {downMesh, get, mesh, sendMany, type Sent, upMesh} from '../helpers/mesh.js'

// One instance each that takes any number (containerConcurrency 0), and no queue: only the
// account and the reservation decide who is served.
const yaml = (port: number) => `
name: reserved
functions: {accountConcurrency: 3}
ingress:
  port: ${port}
  routes:
    - {prefix: /checkout, service: checkout}
    - {prefix: /reports, service: reports}
services:
  checkout:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0, reservedConcurrency: 2}
  reports:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, queue: 0}
`

const byStatus = (sent: Sent[]) => sent.reduce<Record<number, number>>((n, s) => ({...n, [s.status]: (n[s.status] ?? 0) + 1}), {})
const throttled = (sent: Sent[]) => sent.filter((s) => s.status === 429).every((s) => s.flags === 'TH')

describe('reservedConcurrency', () => {
  let dir = ''
  let ingress = ''
  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
  }, 60_000)
  afterAll(async () => {
    if (dir) await downMesh(dir)
  })

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
    const file = path.join(dir, 'mesh.yaml')
    writeFileSync(file, readFileSync(file, 'utf8').replace('accountConcurrency: 3', 'accountConcurrency: 4').replace('reservedConcurrency: 2', 'reservedConcurrency: 1'))
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
