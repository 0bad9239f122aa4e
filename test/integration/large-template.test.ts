// The `large` template runs as written: a small generated mesh (8 services, 5 deep) comes up
// healthy, a request through the ingress goes the whole depth (the spine's calls always
// happen), and `mesh trace` draws that path with every name whole.
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {eventually, freePort, get, json, mesh} from '../helpers/mesh.js'

const TRACE_ID = '0123456789abcdef0123456789abcdef'

describe('large template end to end', () => {
  let dir: string
  let ingress: string

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-large-'))
    const init = await mesh(dir, ['init', '--template', 'large', '--services', '8', '--depth', '5', '--seed', '3'])
    expect(init.exitCode, init.stderr).toBe(0)
    const file = path.join(dir, 'mesh.yaml')
    const port = await freePort()
    writeFileSync(file, readFileSync(file, 'utf8').replace(/port: 8000/, `port: ${port}`))
    ingress = `http://127.0.0.1:${port}`
    const up = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
    expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  }, 120_000)

  afterAll(async () => {
    await mesh(dir, ['down'])
    rmSync(dir, {recursive: true, force: true})
  })

  test('every generated service is up and healthy', () => {
    return eventually(async () => {
      const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
      expect(status.services).toHaveLength(8)
      return status.services.every((s) => s.instances.every((i) => i.health === 'healthy'))
    })
  })

  test('a request goes the whole depth, gateway to database, and its trace shows every hop by name', async () => {
    const r = await get(`${ingress}/`, {traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`})
    expect(r.status, r.text).toBe(200)
    const spans = await eventually(async () => {
      const t = await mesh(dir, ['trace', TRACE_ID, '--json'])
      if (t.exitCode !== 0) return undefined
      const all = json<Span[]>(t)
      // gateway plus four hops below it, each a client and a server span.
      return all.filter((s) => s.kind === 'server').length >= 5 ? all : undefined
    })
    const servers = new Set(spans.filter((s) => s.kind === 'server').map((s) => s.service))
    expect(servers).toContain('gateway')
    expect([...servers].some((s) => s.endsWith('-db'))).toBe(true)
    const drawn = await mesh(dir, ['trace', TRACE_ID, '--width', '100'])
    expect(drawn.exitCode, drawn.stderr).toBe(0)
    expect(drawn.stdout).not.toContain('…')
    for (const s of servers) expect(drawn.stdout).toContain(`${s}-v1-0 GET /`)
  })
})
