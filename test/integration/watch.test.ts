// `mesh up --watch`, as `docker compose up --watch`: editing a service's code restarts its
// instances one at a time (each replacement healthy before the old one is drained), so
// requests keep succeeding, and code that no longer starts leaves the old instances serving.
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {DeployRecord} from '../../src/sim/deploy/deploy-types.js'
import {downMesh, eventually, get, json, mesh, meshOnFreePort, sendUntilStopped} from '../helpers/mesh.js'

const server = (answer: string) => `
import http from 'node:http'
${answer === 'broken' ? "throw new Error('a typo the developer just saved')" : ''}
http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : '${answer}')).listen(Number(process.env.PORT), '127.0.0.1')
`

describe('mesh up --watch', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    ;({dir, ingress} = await meshOnFreePort(
      (port) => `
name: watching
ingress: {port: ${port}, routes: [{prefix: /, service: web}]}
services:
  web:
    command: node app/server.js
    replicas: 2
    watch: [app]
    health: {path: /healthz, interval: 200ms}
`,
    ))
    mkdirSync(path.join(dir, 'app'))
    writeFileSync(path.join(dir, 'app', 'package.json'), '{"type": "module"}')
    writeFileSync(path.join(dir, 'app', 'server.js'), server('v1'))
    const up = await mesh(dir, ['up', '-d', '--watch'])
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  })

  afterAll(() => downMesh(dir))

  test('mesh status says what is watched', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.services[0].watching).toEqual(['app'])
    expect((await mesh(dir, ['status'])).stdout).toContain('web: watching app (a change restarts it, one instance at a time)')
    expect((await get(`${ingress}/`)).text).toBe('v1')
  })

  test('an edit restarts every instance with no failed request; the restart is in the history', async () => {
    const before = json<MeshStatus>(await mesh(dir, ['status', '--json'])).services[0].instances.map((i) => i.instance)
    const load = sendUntilStopped(`${ingress}/`, 10, 2)
    writeFileSync(path.join(dir, 'app', 'server.js'), server('v2'))
    const replaced = await eventually(async () => {
      const instances = json<MeshStatus>(await mesh(dir, ['status', '--json'])).services[0].instances
      return instances.length === 2 && !instances.some((i) => before.includes(i.instance)) && instances.every((i) => i.health === 'healthy')
    }, 40_000)
    expect(replaced).toBe(true)
    const sent = await load.stop()
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.filter((s) => s.status !== 200)).toEqual([])
    for (let i = 0; i < 4; i++) expect((await get(`${ingress}/`)).text).toBe('v2')
    const history = json<DeployRecord[]>(await mesh(dir, ['history', 'web', '--json']))
    expect(history.map((r) => [r.plan.strategy, r.outcome])).toEqual([['restart', 'restarted']])
  })

  test('code that no longer starts: the restart stops at the first replacement, the old instances keep serving', async () => {
    writeFileSync(path.join(dir, 'app', 'server.js'), server('broken'))
    const last = await eventually(async () => {
      const outcome = json<DeployRecord[]>(await mesh(dir, ['history', 'web', '--json'])).at(-1)?.outcome
      return outcome === 'failed' ? outcome : undefined
    }, 40_000)
    expect(last).toBe('failed')
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    expect(status.services[0].instances.filter((i) => i.health === 'healthy')).toHaveLength(2)
    expect((await get(`${ingress}/`)).text).toBe('v2')
    // Fixed again: the next save restarts it.
    writeFileSync(path.join(dir, 'app', 'server.js'), server('v3'))
    expect(await eventually(async () => (await get(`${ingress}/`)).text === 'v3', 40_000)).toBe(true)
  })
})
