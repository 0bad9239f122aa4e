// ${VAR} in mesh.yaml, as docker compose substitutes them: from the shell of the command
// that reads the file, then a .env beside it.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {downMesh, eventually, freePort, get, json, mesh, meshDir} from '../helpers/mesh.js'

describe('${VAR} in mesh.yaml', () => {
  let dir: string
  let port: number

  beforeAll(async () => {
    port = await freePort()
    dir = meshDir(`
name: vars
ingress: {port: ${port}, routes: [{prefix: /arg, service: portarg}, {prefix: /, service: web}]}
services:
  web:
    command: node fixtures/echo-server.js
    replicas: \${WEB_REPLICAS:-1}
    env:
      GREETING: \${GREETING:?say hello}
      WHERE: \${WHERE}
      NOTE: \${NOTE}
  portarg:
    command: node fixtures/echo-server.js --port $PORT
    health: {command: "node fixtures/port-open.js --port $PORT"}
`)
    writeFileSync(path.join(dir, '.env'), 'WHERE=from-dotenv\nWEB_REPLICAS=2\n')
  })

  afterAll(() => downMesh(dir))

  test('mesh config prints the file as the mesh reads it (variables substituted); --json the whole checked configuration', async () => {
    const text = await mesh(dir, ['config'], {env: {GREETING: 'hi'}})
    expect(text.exitCode, text.stderr).toBe(0)
    expect(text.stdout).toContain('    replicas: 2\n')
    expect(text.stdout).toContain('      GREETING: hi\n')
    expect(text.stdout).toMatch(/^ {6}WHERE: from-dotenv$/m)
    const config = json<MeshConfig>(await mesh(dir, ['config', '--json'], {env: {GREETING: 'hi'}}))
    expect(config.services[0].versions[0]).toMatchObject({replicas: 2, env: {GREETING: 'hi', WHERE: 'from-dotenv'}})
    expect(config.services[0].health).toMatchObject({intervalMs: 1000, unhealthyThreshold: 3})
    expect((await mesh(dir, ['config'])).exitCode).toBe(2)
  })

  test('mesh up reads the shell and the .env beside mesh.yaml; a required variable left unset stops it at its line', async () => {
    const missing = await mesh(dir, ['up', '-d'])
    expect(missing.exitCode).not.toBe(0)
    expect(missing.stderr + missing.stdout).toMatch(/mesh.yaml:9:17 services.web.env.GREETING: required variable GREETING is not set: say hello/)
    const up = await mesh(dir, ['up', '-d'], {env: {GREETING: 'hi'}})
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
    // As compose does, it says which variable it used without a value.
    expect(up.stderr).toContain('mesh.yaml:11:13 services.web.env.NOTE: warning: variable NOTE is not set; using an empty string')
    expect((await get(`http://127.0.0.1:${port}/env/GREETING`)).text).toBe('hi')
    expect((await get(`http://127.0.0.1:${port}/env/WHERE`)).text).toBe('from-dotenv')
    const served = new Set<string>()
    for (let i = 0; i < 4; i++) served.add(JSON.parse((await get(`http://127.0.0.1:${port}/x`)).text).instance)
    expect(served.size).toBe(2)
  })

  test('$PORT in command: and health.command is the instance\'s own, substituted by its shell: the service listens there and answers through the ingress', async () => {
    const validate = await mesh(dir, ['validate'], {env: {GREETING: 'hi'}})
    expect(validate.exitCode, validate.stderr).toBe(0)
    expect(validate.stdout).toContain("$PORT (portarg) in command: left for each instance's shell")
    expect(validate.stderr).not.toContain('variable PORT is not set')
    const r = await get(`http://127.0.0.1:${port}/arg/hello`)
    expect(r.status, r.text).toBe(200)
    expect(JSON.parse(r.text).instance).toBe('portarg-v1-0')
  })

  test('mesh apply reads the variables of its own shell, as compose reads them per command', async () => {
    const applied = await mesh(dir, ['apply'], {env: {GREETING: 'bye'}})
    expect(applied.exitCode, applied.stderr + applied.stdout).toBe(0)
    expect(applied.stdout).toMatch(/applied web: v1 env changed/)
    // The instances are replaced one at a time, after apply returns.
    const rolledOut = await eventually(async () => {
      const greetings = new Set<string>()
      for (let i = 0; i < 4; i++) greetings.add((await get(`http://127.0.0.1:${port}/env/GREETING`)).text)
      return greetings.size === 1 && greetings.has('bye')
    })
    expect(rolledOut).toBe(true)
    // Both replicas were replaced (not one left behind or lost), and they are all that serves.
    const served = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const r = await get(`http://127.0.0.1:${port}/env/GREETING`)
      expect(r.text).toBe('bye')
    }
    for (let i = 0; i < 6; i++) served.add(JSON.parse((await get(`http://127.0.0.1:${port}/x`)).text).instance)
    expect(served.size).toBe(2)
  })
})
