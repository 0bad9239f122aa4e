// TLS on an HttpListener's port (tls-terminator.ts) with real certificates from a mesh CA:
// STRICT, PERMISSIVE and DISABLE, ALPN, rotation, and clients that misbehave in the handshake.
import {X509Certificate} from 'node:crypto'
import http2 from 'node:http2'
import net, {type AddressInfo} from 'node:net'
import tls from 'node:tls'
import {afterEach, beforeAll, describe, expect, test} from 'vitest'
import {HttpListener} from '../../src/sim/proxy/http-listener.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {connectionSecurityOf} from '../../src/sim/proxy/tls-terminator.js'
import type {MtlsMode} from '../../src/sim/config/types.js'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {spiffeId} from '../../src/sim/security/spiffe.js'

const HOUR = 3600_000
let ca: MeshCA
let foreign: MeshCA
let listener: HttpListener | undefined

const workload = (issuer: MeshCA, service: string) =>
  issuer.issue({uri: spiffeId('cluster.local', 'shop', service), ttlMs: HOUR, now: new Date(), commonName: service})

beforeAll(async () => {
  ca = await MeshCA.create('cluster.local')
  foreign = await MeshCA.create('cluster.local')
})

afterEach(() => {
  listener?.closeAll()
  listener?.close()
  listener = undefined
})

async function start(mode: {value: MtlsMode}, handshakeTimeoutMs = 5_000, headersTimeoutMs = 10_000): Promise<{port: number; seen: string[]}> {
  const seen: string[] = []
  const own = await workload(ca, 'catalog')
  listener = new HttpListener({
    headersTimeoutMs,
    keepAliveTimeoutMs: 60_000,
    requestTimeoutMs: 300_000,
    onRequest: (req, res) => {
      const security = connectionSecurityOf(req.socket)
      seen.push(`${req.httpVersion} ${security.tls ? 'tls' : 'plain'} ${security.peer?.identity ?? '-'}`)
      res.writeHead(200, ['content-type', 'text/plain'])
      res.end(security.peer?.principal ?? 'nobody')
    },
    onUpgrade: (_req, socket) => socket.destroy(),
    tls: {
      options: {mode: () => mode.value, mutual: true, handshakeTimeoutMs},
      material: {cert: own.certPem, key: own.keyPem, ca: ca.certPem},
      plaintextRefused: new ProxyError(400, 'DPE', 'this address speaks TLS only'),
    },
  })
  await new Promise<void>((resolve) => listener!.server.listen(0, '127.0.0.1', resolve))
  return {port: (listener.server.address() as AddressInfo).port, seen}
}

/** One HTTP/1.1 GET over TLS; resolves with the status line and body, or with what went wrong. */
function tlsGet(port: number, opts: tls.ConnectionOptions): Promise<{ok: boolean; text: string; serial?: string}> {
  return new Promise((resolve) => {
    const socket = tls.connect({host: '127.0.0.1', port, ca: ca.certPem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'], ...opts})
    let got = ''
    let serial: string | undefined
    socket.on('secureConnect', () => {
      serial = socket.getPeerX509Certificate()?.serialNumber
      socket.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
    })
    socket.on('data', (d) => (got += d.toString()))
    socket.on('error', (e) => resolve({ok: false, text: e.message}))
    socket.on('close', () => resolve({ok: got.startsWith('HTTP/1.1 200'), text: got, serial}))
  })
}

function raw(port: number, bytes: Buffer | string, opts: {endAfterMs?: number} = {}): Promise<{text: string; closedAfterMs: number}> {
  return new Promise((resolve) => {
    const began = Date.now()
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(bytes)
      if (opts.endAfterMs !== undefined) setTimeout(() => socket.destroy(), opts.endAfterMs)
    })
    let got = ''
    socket.on('data', (d) => (got += d.toString('latin1')))
    socket.on('error', () => undefined)
    socket.on('close', () => resolve({text: got, closedAfterMs: Date.now() - began}))
  })
}

describe('TLS on a listener: STRICT', () => {
  test('a client without a certificate, or with one from another CA, is refused; the mesh certificate of frontend is served and named', async () => {
    const {port, seen} = await start({value: 'STRICT'})
    const none = await tlsGet(port, {})
    expect(none.ok).toBe(false)
    const other = await workload(foreign, 'frontend')
    const untrusted = await tlsGet(port, {cert: other.certPem, key: other.keyPem})
    expect(untrusted.ok).toBe(false)
    expect(seen).toEqual([])
    const mine = await workload(ca, 'frontend')
    const good = await tlsGet(port, {cert: mine.certPem, key: mine.keyPem})
    expect(good.ok, good.text).toBe(true)
    expect(good.text).toContain('spiffe://cluster.local/ns/shop/sa/frontend')
    expect(seen).toEqual(['1.1 tls frontend'])
  })

  test('plaintext is answered 400 with the reason, and never served', async () => {
    const {port, seen} = await start({value: 'STRICT'})
    const r = await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n')
    expect(r.text).toMatch(/^HTTP\/1.1 400/)
    expect(r.text).toContain('x-mesh-reason: this address speaks TLS only')
    expect(seen).toEqual([])
  })

  test('HTTP/2 is negotiated by ALPN, with the caller named', async () => {
    const {port, seen} = await start({value: 'STRICT'})
    const mine = await workload(ca, 'frontend')
    const session = http2.connect(`https://127.0.0.1:${port}`, {ca: ca.certPem, cert: mine.certPem, key: mine.keyPem, checkServerIdentity: () => undefined})
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({':path': '/'})
        let text = ''
        stream.on('data', (c: Buffer) => (text += c.toString()))
        stream.on('end', () => resolve(text))
        stream.on('error', reject)
      })
      expect(body).toBe('spiffe://cluster.local/ns/shop/sa/frontend')
      expect((session.socket as tls.TLSSocket).alpnProtocol).toBe('h2')
    } finally {
      session.close()
    }
    expect(seen).toEqual(['2.0 tls frontend'])
  })

  test('a new certificate is presented to new connections; requests across the swap all succeed', async () => {
    const {port} = await start({value: 'STRICT'})
    const mine = await workload(ca, 'frontend')
    const client = {cert: mine.certPem, key: mine.keyPem}
    const before = await tlsGet(port, client)
    const next = await workload(ca, 'catalog')
    const results = await Promise.all(
      Array.from({length: 40}, async (_, i) => {
        if (i === 20) listener!.tls!.setMaterial({cert: next.certPem, key: next.keyPem, ca: ca.certPem})
        return tlsGet(port, client)
      }),
    )
    expect(results.filter((r) => !r.ok)).toEqual([])
    const after = await tlsGet(port, client)
    expect(after.serial).toBe(new X509Certificate(next.certPem).serialNumber)
    expect(after.serial).not.toBe(before.serial)
  })
})

describe('TLS on a listener: PERMISSIVE and DISABLE', () => {
  test('PERMISSIVE takes plaintext and mTLS on the same port and says which', async () => {
    const {port, seen} = await start({value: 'PERMISSIVE'})
    const plain = await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
    expect(plain.text).toMatch(/^HTTP\/1.1 200/)
    const mine = await workload(ca, 'frontend')
    expect((await tlsGet(port, {cert: mine.certPem, key: mine.keyPem})).ok).toBe(true)
    expect(seen).toEqual(['1.1 plain -', '1.1 tls frontend'])
  })

  test('DISABLE speaks plaintext only, and the mode is read per connection', async () => {
    const mode = {value: 'DISABLE' as MtlsMode}
    const {port} = await start(mode)
    const mine = await workload(ca, 'frontend')
    expect((await tlsGet(port, {cert: mine.certPem, key: mine.keyPem})).ok).toBe(false)
    expect((await raw(port, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')).text).toMatch(/^HTTP\/1.1 200/)
    mode.value = 'STRICT'
    expect((await tlsGet(port, {cert: mine.certPem, key: mine.keyPem})).ok).toBe(true)
  })
})

describe('TLS on a listener: clients that misbehave', () => {
  test('a handshake that stalls is dropped at the handshake timeout; garbage and aborts are closed; the listener still serves', async () => {
    const {port, seen} = await start({value: 'PERMISSIVE'}, 300)
    // A ClientHello record header, then nothing.
    const stalled = await raw(port, Buffer.from([0x16, 0x03, 0x01]))
    expect(stalled.closedAfterMs).toBeGreaterThanOrEqual(250)
    expect(stalled.closedAfterMs).toBeLessThan(5_000)
    const garbage = await raw(port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), Buffer.alloc(64, 0xab)]))
    expect(garbage.text).not.toContain('HTTP/')
    const silent = await raw(port, Buffer.alloc(0))
    expect(silent.closedAfterMs).toBeLessThan(5_000)
    await Promise.all(Array.from({length: 20}, () => raw(port, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), {endAfterMs: 5})))
    const mine = await workload(ca, 'frontend')
    expect((await tlsGet(port, {cert: mine.certPem, key: mine.keyPem})).ok).toBe(true)
    expect(seen).toEqual(['1.1 tls frontend'])
    const open = await new Promise<number>((resolve) => listener!.server.getConnections((_e, n) => resolve(n)))
    expect(open).toBeLessThanOrEqual(1)
  })

  test('a client that completes the handshake, then sends nothing, is closed at the headers timeout, whichever protocol ALPN chose', async () => {
    const {port} = await start({value: 'STRICT'}, 5_000, 300)
    const mine = await workload(ca, 'frontend')
    for (const alpn of ['http/1.1', 'h2']) {
      const began = Date.now()
      const closedAfterMs = await new Promise<number>((resolve) => {
        const s = tls.connect({host: '127.0.0.1', port, ca: ca.certPem, cert: mine.certPem, key: mine.keyPem, checkServerIdentity: () => undefined, ALPNProtocols: [alpn]})
        s.on('error', () => undefined)
        s.on('close', () => resolve(Date.now() - began))
        // Read what the server sends (its SETTINGS), so its close is seen.
        s.resume()
        setTimeout(() => s.destroy(), 5_000).unref()
      })
      expect(closedAfterMs, alpn).toBeLessThan(5_000)
    }
  })

  test('HTTP/2 over TLS without ALPN choosing it is not spoken (RFC 9113 §3.2): the connection closes', async () => {
    const {port, seen} = await start({value: 'STRICT'})
    const mine = await workload(ca, 'frontend')
    const got = await new Promise<string>((resolve) => {
      const s = tls.connect({host: '127.0.0.1', port, ca: ca.certPem, cert: mine.certPem, key: mine.keyPem, checkServerIdentity: () => undefined}, () =>
        s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      )
      let text = ''
      s.on('data', (d) => (text += d.toString('latin1')))
      s.on('error', () => undefined)
      s.on('close', () => resolve(text))
      setTimeout(() => s.destroy(), 5_000).unref()
    })
    expect(got).toBe('')
    expect(seen).toEqual([])
  })

  test('a request node:http cannot read is answered over TLS as over plaintext: 431 for headers too large, 400 for garbage', async () => {
    const {port, seen} = await start({value: 'STRICT'})
    const mine = await workload(ca, 'frontend')
    const send = (bytes: string) =>
      new Promise<string>((resolve) => {
        const s = tls.connect({host: '127.0.0.1', port, ca: ca.certPem, cert: mine.certPem, key: mine.keyPem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1']}, () => s.write(bytes))
        let text = ''
        s.on('data', (d) => (text += d.toString('latin1')))
        s.on('error', () => undefined)
        s.on('close', () => resolve(text))
        setTimeout(() => s.destroy(), 5_000).unref()
      })
    expect(await send(`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1.1 431 /)
    expect(await send('GET / HTTP/1.1\r\nbad header line\r\n\r\n')).toMatch(/^HTTP\/1.1 400 /)
    expect(seen).toEqual([])
    // After a request was answered, a bad one only closes the connection: the answer already sent arrives whole, nothing after it.
    const after = await send(`GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(after).toMatch(/^HTTP\/1.1 200 [^]*\r\nspiffe:\/\/cluster.local\/ns\/shop\/sa\/frontend\r\n0\r\n\r\n$/)
  })
})
