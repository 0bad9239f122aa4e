// `mesh up` in the foreground: progress, then the status and every instance's
// logs, until Ctrl-C stops everything (exit 130, as docker compose).
import {execa} from 'execa'
import {describe, expect, test} from 'vitest'
import {BIN, eventually, freePort, get, mesh, meshDir, pidAlive} from '../helpers/mesh.js'
import type {MeshStatus} from '../../src/sim/control/status.js'

describe('mesh up in the foreground', () => {
  test('streams prefixed logs, serves traffic, and Ctrl-C stops every process', async () => {
    const port = await freePort()
    const dir = meshDir(`
name: fg
ingress: {port: ${port}, routes: [{prefix: /crashy, service: crashy}, {prefix: /, service: echo}]}
services:
  echo:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
  sim:
    simulate: {latency: 1ms}
  crashy:
    command: node -e "console.error('DB_URL is not set (fatal)'); process.exit(3)"
    health: {path: /healthz}
    scaling: {minScale: 0, initialScale: 0}
`)
    const child = execa('node', [BIN, 'up'], {cwd: dir, reject: false, env: {NO_COLOR: '1'}, timeout: 60_000})
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    try {
      expect(await eventually(() => out.includes('echo-v1-0') && /ingress http:\/\/127\.0\.0\.1:\d+/.test(out), 30_000)).toBe(true)
      expect((await get(`http://127.0.0.1:${port}/hello`)).status).toBe(200)
      // Logs stream after startup, prefixed with the instance name.
      expect(await eventually(() => /^echo-v1-0\s+\| echo echo-v1-0 on \d+$/m.test(out) && /^sim-v1-0\s+\| simulated sim@v1/m.test(out), 10_000)).toBe(true)
      // A cold start that fails is said in the foreground too, not only in mesh status / history.
      expect((await get(`http://127.0.0.1:${port}/crashy`)).status).toBe(503)
      expect(await eventually(() => /^\[mesh\] crashy: 0 → 1 failed: .*crashed 3 times while starting/m.test(out), 10_000)).toBe(true)
      const status: MeshStatus = JSON.parse((await mesh(dir, ['status', '--json'])).stdout)
      const pids = status.services.flatMap((s) => s.instances.map((i) => i.pid!))
      child.kill('SIGINT')
      const result = await child
      expect(result.exitCode).toBe(130)
      expect(pids.every((p) => !pidAlive(p))).toBe(true)
      expect((await mesh(dir, ['status'])).exitCode).toBe(3)
    } finally {
      child.kill('SIGKILL')
      await mesh(dir, ['down'])
    }
  })

  test('mesh down from another terminal stops a foreground mesh, which then exits 0', async () => {
    const dir = meshDir(`
name: fg2
services:
  sim:
    simulate: {latency: 1ms}
`)
    const child = execa('node', [BIN, 'up'], {cwd: dir, reject: false, env: {NO_COLOR: '1'}, timeout: 60_000})
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    try {
      expect(await eventually(() => out.includes('sim-v1-0'), 30_000)).toBe(true)
      const down = await mesh(dir, ['down'])
      expect(down.exitCode).toBe(0)
      expect(down.stdout).toContain('Stopped mesh "fg2"')
      expect((await child).exitCode).toBe(0)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
