// One-shot jobs, as docker compose runs them: `restart: "no"` or on-failure, and callers that
// wait with `dependsOn: {migrate: {condition: service_completed_successfully}}` (or only for
// a process to run: service_started).
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {TraceSummary} from '../../src/sim/telemetry/trace-store.js'
import {downMesh, freePort, get, json, mesh, meshDir} from '../helpers/mesh.js'

describe('one-shot jobs and dependsOn conditions', () => {
  let dir: string
  let port: number
  let up: {exitCode: number; stdout: string; stderr: string}

  beforeAll(async () => {
    port = await freePort()
    // db takes 2 s to come up; migrate needs it healthy, api needs migrate completed; early
    // only needs db's process running, so it starts (and checks) before db-ready exists.
    dir = meshDir(`
name: jobs
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
services:
  db:
    command: sh -c 'sleep 2; touch db-ready; exec node fixtures/echo-server.js'
  migrate:
    command: sh -c 'test -e db-ready || exit 9; echo applied 3 migrations; echo v3 > schema.txt'
    restart: "no"
    dependsOn: [db]
  api:
    command: sh -c 'test -e schema.txt || exit 8; exec node fixtures/echo-server.js'
    dependsOn:
      migrate: {condition: service_completed_successfully}
      db: {condition: service_healthy}
  early:
    command: sh -c 'test ! -e db-ready || exit 7; exec node fixtures/echo-server.js'
    dependsOn: {db: {condition: service_started}}
  seed:
    # Fails its first run (as a seed racing a cold cache might), then calls api through its sidecar.
    command: sh -c 'if [ -e seeded-once ]; then exec node fixtures/call-dependency.js; fi; touch seeded-once; exit 1'
    env: {CALL: API_URL, CALL_PATH: /seeded}
    restart: on-failure
    dependsOn: [api]
`)
    up = await mesh(dir, ['up', '-d'])
  })

  afterAll(() => downMesh(dir))

  test('mesh up starts each service once its dependencies are healthy, completed or started, as its conditions say', async () => {
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const instance = (service: string) => status.services.find((s) => s.name === service)!.instances[0]
    expect(instance('migrate')).toMatchObject({state: 'exited', health: 'completed', restarts: 0, registered: false, lastExit: {code: 0, signal: null}})
    expect(instance('migrate').pid).toBeUndefined()
    // Started before db was ready (it exits 7 otherwise), and healthy by now like the rest.
    for (const s of ['db', 'api', 'early']) expect(instance(s), s).toMatchObject({state: 'running', health: 'healthy', restarts: 0})
    expect(instance('seed')).toMatchObject({state: 'exited', health: 'completed', restarts: 1, lastExit: {code: 0}})
    expect(readFileSync(path.join(dir, 'schema.txt'), 'utf8')).toBe('v3\n')
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200)

    const text = await mesh(dir, ['status'])
    expect(text.stdout).toMatch(/^migrate +v1 +migrate-v1-0 +- .* completed +0 \(last exit 0\)$/m)
    const logs = await mesh(dir, ['logs', 'migrate'])
    expect(logs.stdout).toContain('applied 3 migrations')
    expect(logs.stdout).toContain('completed; not restarted')
  })

  test("a job's calls go through its own sidecar and are traced as coming from it", async () => {
    const logs = await mesh(dir, ['logs', 'seed'])
    expect(logs.stdout).toContain('called 200')
    const traces = json<TraceSummary[]>(await mesh(dir, ['traces', '--service', 'seed', '--json']))
    expect(traces.length).toBeGreaterThanOrEqual(1)
    expect(traces[0].services).toEqual(['seed', 'api'])
  })

  test('mesh restart runs a job again: the new instance counts once it completed', async () => {
    const restart = await mesh(dir, ['restart', 'migrate'])
    expect(restart.exitCode, restart.stderr + restart.stdout).toBe(0)
    const logs = await mesh(dir, ['logs', 'migrate'])
    // The job's own lines, not the [mesh] lines quoting its command.
    expect(logs.stdout.match(/\| applied 3 migrations$/gm)).toHaveLength(2)
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const instances = status.services.find((s) => s.name === 'migrate')!.instances
    expect(instances).toHaveLength(1)
    expect(instances[0]).toMatchObject({health: 'completed', state: 'exited'})
  })
})

describe('a job that fails', () => {
  test('mesh up stops at it, naming its exit code and last lines; what waits for it never starts', async () => {
    const port = await freePort()
    const dir = meshDir(`
name: failing-job
ingress: {port: ${port}, routes: [{prefix: /, service: api}]}
services:
  migrate:
    command: sh -c 'echo migration 42 failed, relation users already exists >&2; exit 3'
    restart: "no"
  api:
    command: node fixtures/echo-server.js
    dependsOn: {migrate: {condition: service_completed_successfully}}
`)
    const up = await mesh(dir, ['up', '-d'])
    expect(up.exitCode).toBe(1)
    const out = up.stderr + up.stdout
    expect(out).toContain('instance migrate-v1-0 failed (exit code 3) and is not restarted (restart: no)')
    expect(out).toContain('migration 42 failed, relation users already exists')
    expect(existsSync(path.join(dir, '.mesh', 'logs', 'api-v1-0.log'))).toBe(false)
    // The failed start left nothing running.
    expect((await mesh(dir, ['status'])).exitCode).toBe(3)
  })
})
