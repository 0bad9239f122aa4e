import http from 'node:http'
import {once} from 'node:events'
import type {AddressInfo, Socket} from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {Agent, request} from 'undici'
import {WarmConnections} from '../../src/sim/model/warm-connections.js'

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

/** A server that records its connections (open or closed) and the requests on them. */
async function server() {
  const sockets: Socket[] = []
  let requests = 0
  const s = http.createServer((req, res) => {
    requests++
    req.resume()
    res.end('ok')
  })
  s.on('connection', (socket: Socket) => sockets.push(socket))
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  cleanup.push(() => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve) }))
  const open = () => sockets.filter((x) => !x.destroyed).length
  return {url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, sockets, open, requests: () => requests}
}

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
}

describe('warm connections', () => {
  it('opens N per origin (one origin however many URLs name it), and the Agent\'s calls take them before dialling', async () => {
    const dep = await server()
    const warm = new WarmConnections()
    cleanup.push(() => warm.close())
    await warm.open([dep.url, `${dep.url}/`, 'https://127.0.0.1:1'], 3, 2_000)
    expect(warm.size).toBe(3)
    await until(() => dep.sockets.length === 3)
    expect(dep.sockets).toHaveLength(3)
    const agent = new Agent({connect: warm.connect})
    cleanup.push(() => agent.close())
    // Three at once: each takes a warmed connection; a fourth dials a new one.
    const answers = await Promise.all([1, 2, 3, 4].map(() => request(dep.url, {dispatcher: agent}).then((r) => r.body.text())))
    expect(answers).toEqual(['ok', 'ok', 'ok', 'ok'])
    expect(warm.size).toBe(0)
    expect(dep.sockets).toHaveLength(4)
  })

  it('a warmed connection nobody takes is closed after its idle time, before the listener would close it', async () => {
    const dep = await server()
    const warm = new WarmConnections(50)
    cleanup.push(() => warm.close())
    await warm.open([dep.url], 2, 2_000)
    await until(() => dep.sockets.length === 2)
    expect(dep.open()).toBe(2)
    await until(() => dep.open() === 0)
    expect(dep.open()).toBe(0)
    // A call after that dials afresh, never into a closed socket.
    const agent = new Agent({connect: warm.connect})
    cleanup.push(() => agent.close())
    expect(await request(dep.url, {dispatcher: agent}).then((r) => r.body.text())).toBe('ok')
  })

  it('close ends the idle ones; a refused origin resolves open() at once without a connection', async () => {
    const dep = await server()
    const gone = await server()
    const goneUrl = gone.url
    await cleanup.pop()!()
    const warm = new WarmConnections()
    await warm.open([dep.url, goneUrl], 2, 5_000)
    expect(warm.size).toBe(2)
    await until(() => dep.sockets.length === 2)
    warm.close()
    await until(() => dep.open() === 0)
    expect(dep.open()).toBe(0)
    expect(dep.requests()).toBe(0)
  })

  it('a call aborted on a warmed connection: the connection goes, the next call is answered', async () => {
    const dep = await server()
    const warm = new WarmConnections()
    cleanup.push(() => warm.close())
    await warm.open([dep.url], 1, 2_000)
    const agent = new Agent({connect: warm.connect})
    cleanup.push(() => agent.close())
    const left = new AbortController()
    const call = request(dep.url, {dispatcher: agent, signal: left.signal})
    left.abort()
    await expect(call).rejects.toThrow(/abort/i)
    expect(warm.size).toBe(0)
    expect(await request(dep.url, {dispatcher: agent}).then((r) => r.body.text())).toBe('ok')
  })
})
