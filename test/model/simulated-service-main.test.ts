// The child process as the supervisor starts it. Runs against dist/ (`npm test` builds first).
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

const MAIN = fileURLToPath(new URL('../../dist/sim/model/simulated-service-main.js', import.meta.url))

function start(env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], {env: {PATH: process.env.PATH ?? '', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  return {child, out: () => stdout, err: () => stderr}
}

describe.skipIf(!existsSync(MAIN))('simulated-service-main (dist)', () => {
  it('listens on PORT, logs one line, answers, and exits 0 on SIGTERM', async () => {
    const proc = start({
      PORT: '0',
      MESH_SERVICE: 'hello',
      MESH_VERSION: 'v1',
      MESH_INSTANCE: 'hello-v1-0',
      MESH_SIMULATE: JSON.stringify({latency: {p50Ms: 1, p99Ms: 1}}),
    })
    while (!proc.out().includes('\n')) await once(proc.child.stdout, 'data')
    const match = /^simulated hello@v1 \(hello-v1-0\) listening on 127\.0\.0\.1:(\d+)\n/.exec(proc.out())
    expect(match).not.toBeNull()

    const res = await fetch(`http://127.0.0.1:${match![1]}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-mesh-served-by')).toBe('hello-v1-0')
    expect(await res.json()).toMatchObject({service: 'hello', instance: 'hello-v1-0'})

    proc.child.kill('SIGTERM')
    const [code] = await once(proc.child, 'exit')
    expect(code).toBe(0)
  })

  it('with simulate.coldStart, waits its init phase before it listens (a seeded draw, said in its log)', async () => {
    const began = Date.now()
    const proc = start({
      PORT: '0',
      MESH_SERVICE: 'fn',
      MESH_VERSION: 'v1',
      MESH_INSTANCE: 'fn-v1-0',
      MESH_SIMULATE: JSON.stringify({latency: {p50Ms: 1, p99Ms: 1}, coldStart: {p50Ms: 400, p99Ms: 400}}),
    })
    while (!proc.out().includes('listening')) await once(proc.child.stdout, 'data')
    expect(proc.out()).toMatch(/^simulated fn@v1 \(fn-v1-0\) init phase: 400 ms \(simulate\.coldStart\)\nsimulated fn@v1 \(fn-v1-0\) listening on /)
    expect(Date.now() - began).toBeGreaterThanOrEqual(400)
    proc.child.kill('SIGTERM')
    const [code] = await once(proc.child, 'exit')
    expect(code).toBe(0)
  })

  it('exits 2 with a clear message when MESH_SIMULATE is missing', async () => {
    const proc = start({PORT: '0'})
    const [code] = await once(proc.child, 'exit')
    expect(code).toBe(2)
    expect(proc.err()).toMatch(/MESH_SIMULATE is not set/)
  })

  it('exits 2 when PORT is missing', async () => {
    const proc = start({MESH_SIMULATE: '{}'})
    const [code] = await once(proc.child, 'exit')
    expect(code).toBe(2)
    expect(proc.err()).toMatch(/PORT must be a port number/)
  })
})
