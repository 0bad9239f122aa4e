// Each run of the mesh has its own logs: a new `mesh up` moves the last run's to
// .mesh/logs/previous/, `mesh logs` shows only this run's, and starting one more
// service on a running mesh (`mesh up -d SERVICE`) keeps the running mesh's lines.
import {appendFileSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {downMesh, eventually, get, mesh, meshOnFreePort} from '../helpers/mesh.js'

const LOGGER = `
import http from 'node:http'
http.createServer((req, res) => {
  if (req.url !== '/healthz') console.log('hit ' + req.url)
  res.end('ok')
}).listen(Number(process.env.PORT), '127.0.0.1')
`

const yaml = (port: number) => `
name: log-runs
ingress:
  port: ${port}
  routes: [{prefix: /, service: logger}]
services:
  logger:
    command: node logger.js
    health: {path: /healthz, interval: 100ms}
  later:
    command: node logger.js
    health: {path: /healthz, interval: 100ms}
    profiles: [later]
`

describe('logs per run', () => {
  let dir = ''
  let ingress = ''
  afterAll(async () => {
    if (dir) await mesh(dir, ['down'])
  })

  const logs = async () => {
    const r = await mesh(dir, ['logs'])
    expect(r.exitCode, r.stderr).toBe(0)
    return r.stdout
  }
  const up = async (...args: string[]) => {
    const r = await mesh(dir, ['up', '-d', ...args])
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
  }

  test('a new mesh up starts new log files, keeping the last run in previous/; up SERVICE on a running mesh keeps them', async () => {
    ;({dir, ingress} = await meshOnFreePort(yaml))
    writeFileSync(path.join(dir, 'logger.js'), LOGGER)

    await up()
    expect((await get(`${ingress}/first-run`)).status).toBe(200)
    expect(await eventually(async () => (await logs()).includes('hit /first-run'), 10_000)).toBe(true)

    // One more service on the running mesh: the same run, so the same logs.
    await up('later')
    expect(await logs()).toContain('hit /first-run')
    expect(await eventually(async () => (await logs()).includes('later-v1-0'), 10_000)).toBe(true)

    await downMesh(dir)
    // Stopped: the last run's logs are still there to read.
    expect(await logs()).toContain('hit /first-run')
    // The daemon's own log too: one file a run, the run before kept beside it.
    appendFileSync(path.join(dir, '.mesh/daemon.log'), 'a line of the first run\n')

    await up()
    expect(readFileSync(path.join(dir, '.mesh/daemon.log'), 'utf8')).not.toContain('a line of the first run')
    expect(readFileSync(path.join(dir, '.mesh/daemon.previous.log'), 'utf8')).toContain('a line of the first run')
    expect((await get(`${ingress}/second-run`)).status).toBe(200)
    expect(await eventually(async () => (await logs()).includes('hit /second-run'), 10_000)).toBe(true)
    expect(await logs()).not.toContain('hit /first-run')
    const previous = readFileSync(path.join(dir, '.mesh/logs/previous/logger-v1-0.log'), 'utf8')
    expect(previous).toContain('hit /first-run')
    expect(previous).not.toContain('hit /second-run')

    // A third run replaces previous/ with the second.
    await downMesh(dir)
    await up()
    const again = readFileSync(path.join(dir, '.mesh/logs/previous/logger-v1-0.log'), 'utf8')
    expect(again).toContain('hit /second-run')
    expect(again).not.toContain('hit /first-run')
    await downMesh(dir)
    dir = ''
  }, 90_000)
})
