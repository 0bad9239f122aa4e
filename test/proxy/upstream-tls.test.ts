// policy.tls against real TLS servers: the Destination's leaf originates ISTIO_MUTUAL with the
// caller's mesh certificate, SIMPLE and MUTUAL with the user's files, and a certificate that
// does not verify is a 503 UF with the TLS reason — never the app's answer.
import {mkdtempSync, writeFileSync} from 'node:fs'
import http2 from 'node:http2'
import {createServer, type Server} from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TLSSocket} from 'node:tls'
import {Agent} from 'undici'
import {afterAll, afterEach, beforeAll, describe, expect, test} from 'vitest'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {Destination} from '../../src/sim/proxy/destination.js'
import {H2Sessions} from '../../src/sim/proxy/h2-upstream.js'
import {networkLeaf} from '../../src/sim/proxy/leaf.js'
import {Registry} from '../../src/sim/proxy/registry.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {callService, type MeshResponse} from '../../src/sim/proxy/stack.js'
import {UpstreamTls} from '../../src/sim/proxy/upstream-tls.js'
import {WorkloadIdentities} from '../../src/sim/security/workload-identity.js'
import {MeshCA} from '../../src/sim/security/mesh-ca.js'
import {spiffeId} from '../../src/sim/security/spiffe.js'
import {realClock} from '../../src/sim/time/clock.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {probeHttp} from '../../src/sim/supervisor/health-check.js'
import {parsed, yaml} from '../config/helpers.js'
import {callContext, meshRequest, readBody} from '../helpers/proxy-context.js'

const HOUR = 3600_000
const id = (service: string) => spiffeId('cluster.local', 't', service)

interface Instance {
  server: Server
  port: number
  /** What the app saw of each caller: its certificate's URI SAN and serial. */
  callers: Array<{uri: string; serial: string}>
}

/** An app serving HTTPS with `cert`, asking callers for a certificate (as one with MESH_TLS_* files does). */
async function httpsApp(cert: {certPem: string; keyPem: string}, ca: string, delayMs = 0): Promise<Instance> {
  const callers: Instance['callers'] = []
  const server = createServer({cert: cert.certPem, key: cert.keyPem, ca, requestCert: true, rejectUnauthorized: false}, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    const uri = (peer.subjectaltname ?? '').replace(/^URI:/, '')
    callers.push({uri, serial: peer.serialNumber ?? ''})
    setTimeout(() => res.end(`hello ${uri || 'anonymous'}`), delayMs)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {server, port: (server.address() as AddressInfo).port, callers}
}

describe('policy.tls: the data plane originates TLS to instances', () => {
  let ca: MeshCA
  let other: MeshCA
  let identities: WorkloadIdentities
  const agent = new Agent({connections: 4})
  const h2 = new H2Sessions()
  const inflight = new Map<string, number>()
  let pools: UpstreamTls
  const servers: Server[] = []
  const dir = mkdtempSync(join(tmpdir(), 'upstream-tls-'))
  const spans: Span[] = []

  beforeAll(async () => {
    identities = await WorkloadIdentities.start({caDir: join(dir, 'ca'), trustDomain: 'cluster.local', mesh: 't', certTtlMs: HOUR, clock: realClock})
    ca = identities.ca
    other = await MeshCA.create('cluster.local')
    pools = new UpstreamTls(inflight, {keepAliveTimeout: 4_000, connections: 8, connectTimeout: 500})
    pools.useIdentities(identities)
  })
  // Every test reads its bodies: what a request held is given back by the time it ends.
  afterEach(() => expect([...inflight.values()].every((n) => n === 0)).toBe(true))
  afterAll(async () => {
    await pools.close()
    identities.stop()
    await agent.close()
    for (const s of servers) s.closeAllConnections?.()
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  })

  async function serve(cert: {certPem: string; keyPem: string}, delayMs = 0): Promise<Instance> {
    const app = await httpsApp(cert, ca.certPem, delayMs)
    servers.push(app.server)
    return app
  }

  function destination(port: number, tlsLines: string[], service = 'api', protocol = 'http', policyLines: string[] = []): Destination {
    const config = parsed(
      yaml('name: t', 'services:', `  ${service}:`, '    address: 127.0.0.1:1', `    protocol: ${protocol}`, '    policy:', ...policyLines.map((l) => `      ${l}`), '      tls:', ...tlsLines.map((l) => `        ${l}`)),
    )
    const registry = new Registry([service])
    registry.add({instance: `${service}-v1-0`, service, version: 'v1', host: '127.0.0.1', port, inboundPort: port, origin: `http://127.0.0.1:${port}`})
    return new Destination(config.services[0], new Map([['v1', 100]]), {
      registry,
      faults: {faults: new FaultSet(realClock), allowHeaders: () => false},
      clock: realClock,
      leaf: networkLeaf(agent, h2, inflight, pools),
      sink: {record: (span) => spans.push(span)},
      seed: 1,
    })
  }

  const call = (d: Destination, source = 'web', controller?: Cancellation) =>
    callService(d.service, meshRequest({destination: d.name, source, peer: {identity: source, authn: 'listener'}}), callContext(realClock as never, {controller}))

  async function failure(d: Destination): Promise<ProxyError> {
    const error = await call(d).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ProxyError)
    return error as ProxyError
  }

  async function text(res: MeshResponse): Promise<string> {
    return (await readBody(res.body!)).bytes.toString()
  }

  test('ISTIO_MUTUAL: the app sees the caller\'s mesh certificate, and the instance proves its SPIFFE ID', async () => {
    const app = await serve(await ca.issue({uri: id('api'), ttlMs: HOUR, now: new Date(), commonName: 'api'}))
    const d = destination(app.port, ['mode: ISTIO_MUTUAL'])
    const res = await call(d, 'web')
    expect(res.status).toBe(200)
    expect(await text(res)).toBe(`hello ${id('web')}`)
    // Another caller: its own certificate, its own connections.
    expect(await text(await call(d, 'batch'))).toBe(`hello ${id('batch')}`)
    expect(app.callers.map((c) => c.uri)).toEqual([id('web'), id('batch')])
    // Both sides of the hop say it was mutual TLS, and who proved what: Istio's metric labels.
    const web = spans.filter((s) => s.service === 'web' || s.peerService === 'web')
    expect(web.map((s) => [s.kind, s.security])).toEqual([
      ['server', {protocol: 'http', mtls: true, sourcePrincipal: id('web'), destinationPrincipal: id('api')}],
      ['client', {protocol: 'http', mtls: true, sourcePrincipal: id('web'), destinationPrincipal: id('api')}],
    ])
    d.close()
  })

  test('an instance with another identity\'s certificate is refused: 503 UF naming both SPIFFE IDs, a connect failure', async () => {
    const app = await serve(await ca.issue({uri: id('payments'), ttlMs: HOUR, now: new Date(), commonName: 'payments'}))
    const d = destination(app.port, ['mode: ISTIO_MUTUAL'])
    const e = await failure(d)
    expect([e.status, e.flag]).toEqual([503, 'UF'])
    expect(e.message).toContain(`ERR_TLS_SPIFFE_ID_MISMATCH: expected ${id('api')}, got ${id('payments')}`)
    expect(e.outcome).toEqual({kind: 'connect-failure'})
    // The app never got the request.
    expect(app.callers).toEqual([])
    d.close()
  })

  test('an instance whose certificate another CA signed is refused (UNABLE_TO_VERIFY_LEAF_SIGNATURE)', async () => {
    const app = await serve(await other.issue({uri: id('api'), ttlMs: HOUR, now: new Date(), commonName: 'api'}))
    const e = await failure(destination(app.port, ['mode: ISTIO_MUTUAL']))
    expect([e.status, e.flag]).toEqual([503, 'UF'])
    expect(e.message).toMatch(/TLS to api-v1-0 at 127\.0\.0\.1:\d+ failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE/)
  })

  test('an instance with an expired certificate is refused (CERT_HAS_EXPIRED)', async () => {
    const app = await serve(await ca.issue({uri: id('api'), ttlMs: 60_000, now: new Date(Date.now() - 2 * HOUR), commonName: 'api'}))
    const e = await failure(destination(app.port, ['mode: ISTIO_MUTUAL']))
    expect(e.message).toContain('CERT_HAS_EXPIRED: certificate has expired')
  })

  test('outlier detection counts a certificate that does not verify as a connect failure, and ejects the instance', async () => {
    const app = await serve(await ca.issue({uri: id('api'), ttlMs: 60_000, now: new Date(Date.now() - 2 * HOUR), commonName: 'api'}))
    const d = destination(app.port, ['mode: ISTIO_MUTUAL'], 'api', 'http', ['outlierDetection: {consecutive5xxErrors: 2, maxEjectionPercent: 100}'])
    await failure(d)
    expect(d.outlier!.isEjected('api-v1-0')).toBe(false)
    await failure(d)
    expect(d.outlier!.isEjected('api-v1-0')).toBe(true)
    d.close()
  })

  test('a health probe of an instance that serves TLS speaks TLS, presenting the service\'s own certificate', async () => {
    const cert = await ca.issue({uri: id('api'), ttlMs: HOUR, now: new Date(), commonName: 'api'})
    const strict = createServer({cert: cert.certPem, key: cert.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true}, (_req, res) => res.end('ok'))
    await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r))
    servers.push(strict)
    const port = (strict.address() as AddressInfo).port
    const options = await pools.probeOptions('api', {mode: 'ISTIO_MUTUAL'})
    expect(await probeHttp('127.0.0.1', port, '/healthz', 2_000, options)).toEqual({ok: true, detail: 'GET /healthz: HTTP 200'})
    expect(await pools.probeOptions('api', {mode: 'DISABLE'})).toBeUndefined()
    // In plaintext the probe reads no HTTP answer from a TLS port.
    expect((await probeHttp('127.0.0.1', port, '/healthz', 2_000)).ok).toBe(false)
  })

  test('an instance that serves plaintext: the reason says it does not speak TLS', async () => {
    const plain = (await import('node:http')).createServer((_req, res) => res.end('plain'))
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    servers.push(plain as unknown as Server)
    const e = await failure(destination((plain.address() as AddressInfo).port, ['mode: ISTIO_MUTUAL']))
    expect([e.status, e.flag]).toEqual([503, 'UF'])
    expect(e.message).toContain('does not speak TLS')
  })

  test('the caller\'s certificate rotating: a request under way finishes, the next ones present the new certificate', async () => {
    const app = await serve(await ca.issue({uri: id('api'), ttlMs: HOUR, now: new Date(), commonName: 'api'}), 150)
    const d = destination(app.port, ['mode: ISTIO_MUTUAL'], 'api')
    expect(await text(await call(d, 'cart'))).toBe(`hello ${id('cart')}`)
    const slow = call(d, 'cart').then(text)
    await new Promise((r) => setTimeout(r, 50))
    await identities.rotate('cart')
    const after = await text(await call(d, 'cart'))
    expect([await slow, after]).toEqual([`hello ${id('cart')}`, `hello ${id('cart')}`])
    const serials = app.callers.map((c) => c.serial)
    expect(serials[0]).toBe(serials[1])
    expect(serials[2]).not.toBe(serials[0])
    expect(app.callers.every((c) => c.uri === id('cart'))).toBe(true)
    d.close()
  })

  test('SIMPLE to an https server: verified with caCertificates against the sni (or subjectAltNames)', async () => {
    const cert = await other.issue({dnsNames: ['shop.example.com'], ttlMs: HOUR, now: new Date(), commonName: 'shop.example.com'})
    const app = await httpsApp(cert, other.certPem)
    servers.push(app.server)
    writeFileSync(join(dir, 'ca.pem'), other.certPem)
    const ok = destination(app.port, ['mode: SIMPLE', `caCertificates: ${join(dir, 'ca.pem')}`, 'sni: shop.example.com'], 'shop')
    expect(await text(await call(ok))).toBe('hello anonymous')
    const wrongName = destination(app.port, ['mode: SIMPLE', `caCertificates: ${join(dir, 'ca.pem')}`, 'sni: other.example.com'], 'shop2')
    expect((await failure(wrongName)).message).toContain('ERR_TLS_CERT_ALTNAME_INVALID')
    const bySan = destination(app.port, ['mode: SIMPLE', `caCertificates: ${join(dir, 'ca.pem')}`, 'subjectAltNames: [nope.example.com, shop.example.com]'], 'shop3')
    expect(await text(await call(bySan))).toBe('hello anonymous')
    // Without caCertificates the system's roots are used, which do not know this CA.
    const noCa = destination(app.port, ['mode: SIMPLE', 'sni: shop.example.com'], 'shop4')
    expect((await failure(noCa)).message).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/)
  })

  test('ISTIO_MUTUAL to a protocol: grpc instance: HTTP/2 by ALPN over TLS, with the caller\'s certificate', async () => {
    const cert = await ca.issue({uri: id('ratings'), ttlMs: HOUR, now: new Date(), commonName: 'ratings'})
    const seen: string[] = []
    const server = http2.createSecureServer({cert: cert.certPem, key: cert.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false}, (req, res) => {
      const socket = req.socket as TLSSocket
      seen.push(`${socket.alpnProtocol} ${socket.getPeerCertificate().subjectaltname}`)
      res.end('h2 hello')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const d = destination((server.address() as AddressInfo).port, ['mode: ISTIO_MUTUAL'], 'ratings', 'grpc')
    expect(await text(await call(d, 'web'))).toBe('h2 hello')
    expect(seen).toEqual([`h2 URI:${id('web')}`])
    d.close()
    servers.push(server as unknown as Server)
  })

  test('MUTUAL presents the user\'s certificate and key', async () => {
    const app = await serve(await ca.issue({dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlMs: HOUR, now: new Date(), commonName: 'localhost'}))
    const client = await ca.issue({uri: 'spiffe://example.org/client', ttlMs: HOUR, now: new Date(), commonName: 'client'})
    writeFileSync(join(dir, 'mesh-ca.pem'), ca.certPem)
    writeFileSync(join(dir, 'client.pem'), client.certPem)
    writeFileSync(join(dir, 'client.key'), client.keyPem)
    const d = destination(app.port, ['mode: MUTUAL', `caCertificates: ${join(dir, 'mesh-ca.pem')}`, `clientCertificate: ${join(dir, 'client.pem')}`, `privateKey: ${join(dir, 'client.key')}`], 'ext')
    expect(await text(await call(d))).toBe('hello spiffe://example.org/client')
  })

  test('a caller that leaves during the TLS handshake holds nothing once the connect gives up', async () => {
    // Accepts the TCP connection and never answers the ClientHello.
    const sockets: import('node:net').Socket[] = []
    const silent = (await import('node:net')).createServer((s) => sockets.push(s))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const d = destination((silent.address() as AddressInfo).port, ['mode: ISTIO_MUTUAL'], 'slow')
    await identities.certificate('web')
    const controllers = [new Cancellation(), new Cancellation(), new Cancellation()]
    const calls = controllers.map((c) => call(d, 'web', c).then(() => undefined, (e: unknown) => e as ProxyError))
    await new Promise((r) => setTimeout(r, 100))
    expect(inflight.get('slow-v1-0')).toBe(3)
    for (const c of controllers) c.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    const errors = await Promise.all(calls)
    expect(errors.map((e) => e?.status)).toEqual([499, 499, 499])
    expect(inflight.get('slow-v1-0')).toBe(0)
    expect(d.load().breaker).toEqual({requests: 0, pending: 0, connections: 0, retries: 0})
    for (const s of sockets) s.destroy()
    silent.close()
    d.close()
  })

  test('a caller that leaves while its first certificate is issued is answered at once and counts nothing', async () => {
    const app = await serve(await ca.issue({uri: id('api'), ttlMs: HOUR, now: new Date(), commonName: 'api'}))
    const d = destination(app.port, ['mode: ISTIO_MUTUAL'])
    const controller = new Cancellation()
    const pending = call(d, 'newcomer', controller).then(() => undefined, (e: unknown) => e as ProxyError)
    controller.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    expect((await pending)?.status).toBe(499)
    expect(inflight.get('api-v1-0') ?? 0).toBe(0)
    expect(app.callers.filter((c) => c.uri === id('newcomer'))).toEqual([])
    d.close()
  })
})
