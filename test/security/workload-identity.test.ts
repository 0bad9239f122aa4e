import {X509Certificate} from 'node:crypto'
import {mkdtempSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import net from 'node:net'
import tls from 'node:tls'
import {once} from 'node:events'
import {describe, expect, it, vi} from 'vitest'
import {WorkloadIdentities} from '../../src/sim/security/workload-identity.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const HOUR = 3600_000
const TTL = 24 * HOUR

async function identities(clock = new VirtualClock(0, Date.now()), certTtlMs = TTL) {
  const caDir = join(mkdtempSync(join(tmpdir(), 'workload-identity-')), 'ca')
  const ids = await WorkloadIdentities.start({caDir, trustDomain: 'cluster.local', mesh: 'shop', certTtlMs, clock})
  return {ids, clock, caDir}
}

/** tls.Server takes PEMs, not a SecureContext: a TLS socket over each accepted connection takes one. */
function serveTls(context: tls.SecureContext | (() => Promise<tls.SecureContext>), onSecure: (s: tls.TLSSocket) => void, o: {requestCert?: boolean} = {}): net.Server {
  return net.createServer(async (raw) => {
    const secureContext = typeof context === 'function' ? await context() : context
    const socket = new tls.TLSSocket(raw, {isServer: true, secureContext, requestCert: o.requestCert, rejectUnauthorized: o.requestCert})
    socket.on('error', () => socket.destroy())
    socket.on('secure', () => onSecure(socket))
  })
}

const caCert = (ids: WorkloadIdentities) => new X509Certificate(ids.ca.certPem)

describe('WorkloadIdentities', () => {
  it('issues each service its own certificate from the mesh CA, its URI SAN the SPIFFE ID, valid for the TTL', async () => {
    const {ids, clock, caDir} = await identities()
    expect(statSync(join(caDir, 'ca.key')).mode & 0o777).toBe(0o600)
    const cart = await ids.certificate('cart')
    const api = await ids.certificate('api')
    expect(cart.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/cart')
    expect(ids.spiffeId('api')).toBe('spiffe://cluster.local/ns/shop/sa/api')
    for (const c of [cart, api]) {
      const x = new X509Certificate(c.certPem)
      expect(x.subjectAltName).toBe(`URI:${c.spiffeId}`)
      expect(x.verify(caCert(ids).publicKey)).toBe(true)
      expect(x.serialNumber.toLowerCase()).toBe(c.serial.toLowerCase())
      expect(c.notAfter.getTime()).toBe(clock.wallNow() + TTL)
      expect(c.rotations).toBe(0)
    }
    expect(cart.serial).not.toBe(api.serial)
    // Asked again: the same certificate, not a new one.
    expect((await ids.certificate('cart')).serial).toBe(cart.serial)
    ids.stop()
  })

  it('gives concurrent first asks one certificate', async () => {
    const {ids} = await identities()
    const [a, b] = await Promise.all([ids.certificate('cart'), ids.certificate('cart')])
    expect(a.serial).toBe(b.serial)
    ids.stop()
  })

  it('rotates at half the TTL on the clock: onRotate fires, the context is replaced, rotations count', async () => {
    const {ids, clock} = await identities()
    const first = await ids.certificate('cart')
    const firstContext = await ids.secureContext('cart')
    const rotated: string[] = []
    ids.onRotate((s) => rotated.push(s))

    await clock.advance(TTL / 2 - 1000)
    expect((await ids.certificate('cart')).serial).toBe(first.serial)
    expect(rotated).toEqual([])

    await clock.advance(1000)
    const second = await ids.certificate('cart')
    expect(second.serial).not.toBe(first.serial)
    expect(second.rotations).toBe(1)
    expect(second.notAfter.getTime()).toBe(clock.wallNow() + TTL)
    expect(rotated).toEqual(['cart'])
    expect(await ids.secureContext('cart')).not.toBe(firstContext)

    // And again half a life later: the timer re-arms itself from the new certificate.
    await clock.advance(TTL / 2)
    expect((await ids.certificate('cart')).rotations).toBe(2)
    expect(rotated).toEqual(['cart', 'cart'])
    const [listed] = await ids.list()
    expect(listed).toMatchObject({service: 'cart', rotations: 2, serial: (await ids.certificate('cart')).serial})
    expect(Date.parse(listed.nextRotation!)).toBe(clock.wallNow() + TTL / 2)
    ids.stop()
  })

  it('rotates now on request, one service or all, and restarts the half-life timer from then', async () => {
    const {ids, clock} = await identities()
    const cart = await ids.certificate('cart')
    const api = await ids.certificate('api')
    await clock.advance(HOUR)
    await ids.rotate('cart')
    expect((await ids.certificate('cart')).serial).not.toBe(cart.serial)
    expect((await ids.certificate('api')).serial).toBe(api.serial)
    await ids.rotate()
    expect((await ids.certificate('cart')).rotations).toBe(2)
    expect((await ids.certificate('api')).rotations).toBe(1)
    // cart's next rotation is half a life after the last one, not after the first issue.
    await clock.advance(TTL / 2 - 1)
    expect((await ids.certificate('cart')).rotations).toBe(2)
    await clock.advance(1)
    expect((await ids.certificate('cart')).rotations).toBe(3)
    ids.stop()
  })

  it('waits the whole half of a 90-day life, longer than one timer can hold', async () => {
    const ttl = 90 * 24 * HOUR
    // As setTimeout: a longer delay is not kept (Node fires it after 1 ms).
    class NodeLikeClock extends VirtualClock {
      override setTimer(ms: number, fn: () => void) {
        if (ms > 2 ** 31 - 1) throw new Error(`a timer of ${ms} ms would fire at once`)
        return super.setTimer(ms, fn)
      }
    }
    const {ids, clock} = await identities(new NodeLikeClock(0, Date.now()), ttl)
    await ids.certificate('cart')
    await clock.advance(ttl / 2 - 1000)
    expect((await ids.certificate('cart')).rotations).toBe(0)
    await clock.advance(1000)
    expect((await ids.certificate('cart')).rotations).toBe(1)
    ids.stop()
  })

  it('a failed issue is the asker\'s error and the next ask tries again; a failed rotation keeps the certificate, says why and retries at an eighth of the life', async () => {
    const clock = new VirtualClock(0, Date.now())
    const errors: string[] = []
    const caDir = join(mkdtempSync(join(tmpdir(), 'workload-identity-')), 'ca')
    const ids = await WorkloadIdentities.start({caDir, trustDomain: 'cluster.local', mesh: 'shop', certTtlMs: TTL, clock, onError: (s, e) => errors.push(`${s}: ${e.message}`)})
    const issue = vi.spyOn(ids.ca, 'issue').mockRejectedValueOnce(new Error('no entropy'))
    await expect(ids.certificate('cart')).rejects.toThrow('no entropy')
    const first = await ids.certificate('cart')

    issue.mockRejectedValueOnce(new Error('disk on fire'))
    await clock.advance(TTL / 2)
    expect(await ids.certificate('cart')).toBe(first)
    expect(errors).toEqual(['cart: disk on fire'])
    await clock.advance(TTL / 8)
    expect((await ids.certificate('cart')).rotations).toBe(1)
    ids.stop()
  })

  it('stops rotating once stopped', async () => {
    const {ids, clock} = await identities()
    await ids.certificate('cart')
    ids.stop()
    expect(clock.pending()).toBe(0)
  })

  it('presents a faulty certificate while a fault is on, and the genuine one after', async () => {
    const {ids} = await identities()
    const genuine = await ids.certificate('cart')
    await ids.certificate('api')
    const rotated: string[] = []
    ids.onRotate((s) => rotated.push(s))

    await ids.setFault('cart', 'expired')
    const expired = await ids.certificate('cart')
    expect(expired.notAfter.getTime()).toBeLessThan(Date.now())
    expect(new X509Certificate(expired.certPem).verify(caCert(ids).publicKey)).toBe(true)
    expect((await ids.list()).find((c) => c.service === 'cart')?.fault).toBe('expired')

    await ids.setFault('cart', 'untrusted')
    const untrusted = await ids.certificate('cart')
    expect(untrusted.spiffeId).toBe(genuine.spiffeId)
    expect(new X509Certificate(untrusted.certPem).verify(caCert(ids).publicKey)).toBe(false)

    await ids.setFault('cart', 'wrong-identity')
    const wrong = await ids.certificate('cart')
    expect(wrong.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/api')
    expect(new X509Certificate(wrong.certPem).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/api')

    // A rotation under a fault renews the genuine certificate but keeps presenting the fault's.
    await ids.rotate('cart')
    expect((await ids.certificate('cart')).serial).toBe(wrong.serial)

    await ids.setFault('cart', undefined)
    const back = await ids.certificate('cart')
    expect(back.spiffeId).toBe(genuine.spiffeId)
    expect(back.rotations).toBe(1)
    expect(new X509Certificate(back.certPem).verify(caCert(ids).publicKey)).toBe(true)
    expect((await ids.list()).find((c) => c.service === 'cart')?.fault).toBeUndefined()
    expect(rotated).toEqual(['cart', 'cart', 'cart', 'cart'])
    ids.stop()
  })

  it('serves mutual TLS with the contexts it hands out, and the peer sees the SPIFFE ID', async () => {
    const {ids} = await identities()
    const serverCtx = await ids.secureContext('cart')
    const server = serveTls(serverCtx, (socket) => socket.end((socket.getPeerCertificate() as {subjectaltname?: string}).subjectaltname ?? ''), {requestCert: true})
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const {port} = server.address() as {port: number}
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      secureContext: await ids.secureContext('frontend'),
      // A workload certificate names no host: the peer is checked by its SPIFFE ID instead.
      checkServerIdentity: (_host, cert) => (cert.subjectaltname === `URI:${ids.spiffeId('cart')}` ? undefined : new Error(`unexpected peer ${cert.subjectaltname}`)),
    })
    let body = ''
    socket.on('data', (d) => (body += d))
    await once(socket, 'end')
    expect(body).toBe(`URI:${ids.spiffeId('frontend')}`)
    server.close()
    ids.stop()
  })

  it('a certificate fault is what a verifying peer meets: expired and untrusted fail the handshake with the reason, wrong-identity names another service', async () => {
    const {ids} = await identities()
    await ids.certificate('api')
    // Each connection is served with cart's context as it is then, as a listener following onRotate does.
    const server = serveTls(() => ids.secureContext('cart'), (s) => s.end('ok'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const {port} = server.address() as {port: number}
    /** What a client verifying cart's certificate makes of it: 'ok', or the TLS error's code. */
    const dial = async (): Promise<string> => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        secureContext: await ids.secureContext('frontend'),
        checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${ids.spiffeId('cart')}` ? undefined : Object.assign(new Error(`peer is ${cert.subjectaltname}`), {code: 'WRONG_IDENTITY'})),
      })
      return new Promise((resolve) => {
        let body = ''
        socket.on('data', (d) => (body += d))
        socket.on('end', () => resolve(body))
        socket.on('error', (e: Error & {code?: string}) => resolve(e.code ?? e.message))
      })
    }
    expect(await dial()).toBe('ok')
    const reasons = {expired: 'CERT_HAS_EXPIRED', untrusted: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'wrong-identity': 'WRONG_IDENTITY'} as const
    for (const [fault, reason] of Object.entries(reasons) as Array<[keyof typeof reasons, string]>) {
      await ids.setFault('cart', fault)
      expect(await dial(), fault).toBe(reason)
    }
    await ids.setFault('cart', undefined)
    expect(await dial()).toBe('ok')
    server.close()
    ids.stop()
  })

  it('gives the ingress a localhost server certificate from the mesh CA', async () => {
    const {ids} = await identities()
    const server = serveTls(await ids.serverContext(), (s) => s.end('ok'))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const {port} = server.address() as {port: number}
    const socket = tls.connect({host: 'localhost', port, ca: ids.ca.certPem, servername: 'localhost'})
    let body = ''
    socket.on('data', (d) => (body += d))
    await once(socket, 'end')
    expect(body).toBe('ok')
    server.close()
    // It is also the ingress's identity as a caller (policy.tls ISTIO_MUTUAL): its SPIFFE ID beside localhost.
    expect((await ids.list()).map((c) => [c.service, c.spiffeId])).toEqual([['ingress', ids.spiffeId('ingress')]])
    ids.stop()
  })
})
