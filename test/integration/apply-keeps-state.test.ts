// `mesh apply` with nothing changed keeps what the data plane holds: a rate limiter's
// bucket, and a running canary's header route (a deploy's overlay over mesh.yaml's policy).
import {execa} from 'execa'
import {afterAll, beforeAll, expect, test} from 'vitest'
import {BIN, downMesh, eventually, get, mesh, upMesh} from '../helpers/mesh.js'

let dir: string
let ingress: string

beforeAll(async () => {
  ;({dir, ingress} = await upMesh(
    (port) => `
name: keeps
ingress:
  port: ${port}
  routes: [{prefix: /limited, service: limited}, {prefix: /api, service: api}]
services:
  limited:
    simulate: {latency: 1ms}
    policy:
      # One token a minute: nothing refills while the test runs.
      rateLimit: {algorithm: token-bucket, rate: 1/m, burst: 5}
  api:
    versions:
      v1: {simulate: {latency: 1ms}}
      v2: {simulate: {latency: 1ms}}
`,
  ))
})

afterAll(async () => {
  if (dir) await downMesh(dir)
})

async function statuses(n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await get(`${ingress}/limited`)).status)
  return out
}

/** The versions that answered `n` requests carrying x-canary: true. */
async function canaryVersions(n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await get(`${ingress}/api`, {'x-canary': 'true'})
    expect(r.status).toBe(200)
    out.push(String(r.headers['x-mesh-upstream']).includes('v2') ? 'v2' : 'v1')
  }
  return out
}

test('a no-change apply keeps the token bucket: requests past the burst stay 429', async () => {
  expect(await statuses(8)).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
  const apply = await mesh(dir, ['apply'])
  expect(apply.exitCode, apply.stderr).toBe(0)
  expect(apply.stdout).toMatch(/No changes/)
  expect(await statuses(3)).toEqual([429, 429, 429])
})

test("a canary's --match header route survives a no-change apply", async () => {
  // Analysed for a long interval: the canary is under way while the test looks.
  const canary = execa('node', [BIN, 'canary', 'api', '--to', 'v2', '--match', 'x-canary=true', '--interval', '30s', '--steps', '100'], {
    cwd: dir,
    reject: false,
    env: {NO_COLOR: '1'},
  })
  try {
    expect(await eventually(async () => (await canaryVersions(1))[0] === 'v2')).toBe(true)
    expect(await canaryVersions(5)).toEqual(['v2', 'v2', 'v2', 'v2', 'v2'])
    const apply = await mesh(dir, ['apply'])
    expect(apply.exitCode, apply.stderr).toBe(0)
    expect(apply.stdout).toMatch(/No changes/)
    expect(await canaryVersions(5)).toEqual(['v2', 'v2', 'v2', 'v2', 'v2'])
  } finally {
    await mesh(dir, ['rollback', 'api'])
    await canary
  }
  // The rollback took the route away with it.
  expect(await canaryVersions(3)).toEqual(['v1', 'v1', 'v1'])
})
