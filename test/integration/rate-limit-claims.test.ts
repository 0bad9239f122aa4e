// Per-consumer rate limits keyed on JWT claims on a real mesh (needs s12-jwt merged): `mesh token`
// mints alice (plan free) and bob (plan gold); key {claim: sub} and tiers by {claim: plan} give
// each their own bucket at their plan's rate, and requests with no token share the default one.
import {request} from 'undici'
import {afterAll, beforeAll, expect, test} from 'vitest'
import {downMesh, mesh, upMesh} from '../helpers/mesh.js'

let dir: string
let ingress: string

beforeAll(async () => {
  ;({dir, ingress} = await upMesh(
    (p) => `
name: claims
ingress: {port: ${p}, routes: [{prefix: /, service: api}]}
services:
  api:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    policy:
      requestAuthentication:
        jwtRules: [{issuer: mesh}]
      rateLimit:
        algorithm: sliding-log
        key: {claim: sub}
        tiers: {by: {claim: plan}, limits: {free: 2/m, gold: 5/m}, default: 1/m}
`,
  ))
}, 90_000)

afterAll(async () => {
  if (dir) await downMesh(dir)
})

test('the sub claim picks the bucket and the plan claim its tier; no token shares the default tier', async () => {
  const token = async (...args: string[]) => {
    const r = await mesh(dir, ['token', ...args])
    expect(r.exitCode, r.stderr).toBe(0)
    return r.stdout.trim()
  }
  const seven = async (bearer?: string) => {
    const answers: Array<{status: number; limit: unknown; reason: unknown}> = []
    for (let i = 0; i < 7; i++) {
      const r = await request(`${ingress}/`, {headers: bearer ? {authorization: `Bearer ${bearer}`} : {}})
      await r.body.text()
      answers.push({status: r.statusCode, limit: r.headers['ratelimit-limit'], reason: r.headers['x-mesh-reason']})
    }
    return answers
  }
  const admitted = (answers: Array<{status: number}>) => answers.filter((a) => a.status === 200).length
  // Sliding-log over a minute: exact, and no window edge for a slow run to cross.
  const alice = await seven(await token('--sub', 'alice', '--claim', 'plan=free'))
  const bob = await seven(await token('--sub', 'bob', '--claim', 'plan=gold'))
  const nobody = await seven()
  expect([admitted(alice), admitted(bob), admitted(nobody)]).toEqual([2, 5, 1])
  expect([alice[0].limit, bob[0].limit, nobody[0].limit]).toEqual(['2', '5', '1'])
  expect(alice[6].reason).toContain('from claim sub "alice" (tier free: 2/1m)')
  expect(nobody[6].reason).toContain('without claim sub (they share one bucket; tier default: 1/1m)')
})
