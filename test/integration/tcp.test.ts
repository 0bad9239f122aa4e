// A `protocol: tcp` service (a database, a cache) behind the mesh: a caller's TCP listener
// balances connections over its instances, bytes flow both ways, connection-level faults
// act as Toxiproxy's do, and the connections are counted with Istio's TCP metric names.
import net from 'node:net'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {downMesh, get, json, mesh, upMesh} from '../helpers/mesh.js'

/** One connection: sends `line`, resolves with the first reply, or how the connection ended without one. */
function exchange(address: string, line: string, giveUpMs = 5_000): Promise<{reply?: string; ended?: string; ms: number}> {
  const [host, port] = address.split(':')
  const started = Date.now()
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), host)
    const done = (out: {reply?: string; ended?: string}) => {
      socket.destroy()
      resolve({...out, ms: Date.now() - started})
    }
    socket.setTimeout(giveUpMs, () => done({ended: 'no reply'}))
    socket.on('data', (d) => done({reply: d.toString()}))
    socket.on('error', (e: NodeJS.ErrnoException) => done({ended: e.code}))
    socket.on('close', () => done({ended: 'closed'}))
    socket.write(line)
  })
}

describe('protocol: tcp', () => {
  let dir: string
  let port: number
  let dbAddress: string

  beforeAll(async () => {
    ;({dir, port} = await upMesh(
      (port) => `
name: tcp
ingress: {port: ${port}, routes: [{prefix: /, service: app}]}
services:
  app:
    command: node fixtures/echo-server.js
    health: {path: /healthz, interval: 200ms}
    dependsOn: [db]
  boot:
    command: node fixtures/echo-server.js
    env: {CONNECT_AT_BOOT: DB_ADDR}
    dependsOn: [db]
  db:
    protocol: tcp
    command: node fixtures/line-echo.js
    replicas: 2
    health: {command: node fixtures/port-open.js, interval: 200ms}
    # As Istio's L4 AuthorizationPolicy: by caller only (a connection has no method or path).
    policy: {authorization: {allow: [{from: [app, boot]}]}}
`,
    ))
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    dbAddress = status.services.find((s) => s.name === 'app')!.instances[0].outbound!.dependencies.db
  })

  afterAll(() => downMesh(dir))

  test('the caller gets DB_HOST, DB_PORT and DB_ADDR; its connections are balanced over the instances and bytes flow both ways', async () => {
    expect((await get(`http://127.0.0.1:${port}/env/DB_ADDR`)).text).toBe(dbAddress)
    const [host, dbPort] = dbAddress.split(':')
    expect((await get(`http://127.0.0.1:${port}/env/DB_HOST`)).text).toBe(host)
    expect((await get(`http://127.0.0.1:${port}/env/DB_PORT`)).text).toBe(dbPort)
    expect((await get(`http://127.0.0.1:${port}/env/DB_URL`)).text).toBe('')
    const replies = []
    for (let i = 0; i < 4; i++) replies.push((await exchange(dbAddress, `ping ${i}`)).reply)
    // Round robin: two each, every reply its own request's.
    expect(replies.map((r) => r!.split(' ')[0]).sort()).toEqual(['db-v1-0', 'db-v1-0', 'db-v1-1', 'db-v1-1'])
    expect(replies.map((r) => r!.split(' ').slice(1).join(' '))).toEqual(['ping 0', 'ping 1', 'ping 2', 'ping 3'])
  })

  test('a connection its authorization refuses is closed at once: the published address comes from "unknown"', async () => {
    const status = json<MeshStatus>(await mesh(dir, ['status', '--json']))
    const db = status.services.find((s) => s.name === 'db')!.instances[0]
    const refused = await exchange(db.inboundAddress, 'ping')
    expect(refused.reply).toBeUndefined()
    expect(['closed', 'ECONNRESET']).toContain(refused.ended)
    // The callers it names still get through.
    expect((await exchange(dbAddress, 'ping')).reply).toMatch(/^db-v1-\d ping$/)
  })

  test('a service that connects to its database at boot finds it up: mesh up starts what a service depends on first', async () => {
    const status = JSON.parse((await mesh(dir, ['status', '--json'])).stdout) as MeshStatus
    const boot = status.services.find((s) => s.name === 'boot')!.instances[0]
    expect(boot).toMatchObject({health: 'healthy', restarts: 0})
    // The database's health is a command, as a compose healthcheck (pg_isready), run with its env ($PORT).
    for (const db of status.services.find((s) => s.name === 'db')!.instances) expect(db.healthDetail).toBe('`node fixtures/port-open.js`: exit 0')
  })

  test('faults act on connections: a delay holds the replies, an abort refuses, a blackhole never answers', async () => {
    const fault = async (...args: string[]) => expect((await mesh(dir, ['inject-fault', 'db', ...args])).exitCode).toBe(0)
    try {
      await fault('--delay', '300ms')
      const slow = await exchange(dbAddress, 'slow')
      expect(slow.reply).toMatch(/^db-v1-[01] slow$/)
      expect(slow.ms).toBeGreaterThanOrEqual(290)
      await mesh(dir, ['clear-faults', '--all'])

      await fault('--abort', '503')
      const refused = await exchange(dbAddress, 'refused')
      expect(refused.reply).toBeUndefined()
      expect(refused.ended).toMatch(/ECONNRESET|closed/)
      await mesh(dir, ['clear-faults', '--all'])

      await fault('--partition', '--blackhole')
      expect(await exchange(dbAddress, 'lost', 500)).toEqual({ended: 'no reply', ms: expect.any(Number)})

      // A connection has no path: a fault that selects by one would never act, so it is refused.
      const byPath = await mesh(dir, ['inject-fault', 'db', '--delay', '1s', '--path', '/x'])
      expect(byPath.exitCode).toBe(2)
      expect(byPath.stderr).toContain('"db" is protocol: tcp: its connections have no path for --path to select')
    } finally {
      await mesh(dir, ['clear-faults', '--all'])
    }
    expect((await exchange(dbAddress, 'back')).reply).toMatch(/^db-v1-[01] back$/)
  })

  test('connections are counted with Istio TCP metrics; an HTTP call to a TCP service is refused with a pointer to DB_ADDR', async () => {
    const status = JSON.parse((await mesh(dir, ['status', '--json'])).stdout) as MeshStatus
    const metrics = (await get(`${status.controlUrl}/metrics`)).text
    for (const instance of ['db-v1-0', 'db-v1-1']) {
      expect(metrics).toMatch(new RegExp(`istio_tcp_connections_opened_total\\{reporter="source",source_workload="app",source_version="v1",destination_workload="${instance}",destination_service="db",destination_version="v1"\\} [1-9]`))
    }
    expect(metrics).toMatch(/istio_tcp_received_bytes_total\{[^}]*destination_workload="db-v1-0"[^}]*\} [1-9]/)
    // mesh stat --tcp lists them per caller and instance.
    const tcpStat = JSON.parse((await mesh(dir, ['stat', '--tcp', '--json'])).stdout) as Array<{edge: {source: string; destinationInstance: string}; opened: number}>
    expect(tcpStat.filter((r) => r.edge.source === 'app').map((r) => r.edge.destinationInstance).sort()).toEqual(['db-v1-0', 'db-v1-1'])
    const table = (await mesh(dir, ['stat', '--tcp'])).stdout
    expect(table).toMatch(/^CALLER → SERVICE\s+INSTANCE\s+OPEN\s+OPENED\s+IN\s+OUT$/m)
    expect(table).toMatch(/^app → db\s+db-v1-[01]\s+\d+\s+[1-9]\d*\s+\S+\s+\S+$/m)
    // mesh status counts them too.
    const db = status.services.find((s) => s.name === 'db')!
    expect(db.tcp!.opened).toBeGreaterThanOrEqual(6)
    expect(db.tcp!.receivedBytes).toBeGreaterThan(0)
    expect((await mesh(dir, ['status'])).stdout).toMatch(/db: protocol tcp — \d+ connections? open, \d+ opened since mesh up/)
    const proxy = status.services.find((s) => s.name === 'app')!.instances[0].outbound!.proxy
    const {request} = await import('undici')
    const viaProxy = await request(`http://${proxy}/x`, {headers: {host: 'db'}})
    expect(viaProxy.statusCode).toBe(502)
    expect(await viaProxy.body.text()).toContain('"db" is protocol: tcp: connect to it at $DB_ADDR')
  })
})
