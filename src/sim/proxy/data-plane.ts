// The data plane: every sidecar listener of the mesh lives in the daemon process.
// A call from one instance to another takes ONE proxy pass: the caller's outbound
// listener resolves the destination, runs the destination's policy stack (which
// plays the callee's inbound side too, recording both spans) and forwards straight
// to the chosen instance.
//
//   app ──▶ outbound listener (CATALOG_URL or HTTP_PROXY) ──┐
//   client ──▶ ingress listener (path prefix → service) ────┴─▶ Destination stack ─▶ upstream ─▶ instance
//   anyone ──▶ inbound listener (published address) ───────────▶ server span ─▶ upstream ─▶ that instance
//
// A published address, and the HTTPS ingress, speak TLS (tls-terminator.ts) as the service's
// mTLS mode says: there the caller is named by its certificate. The hop from an outbound
// listener to the callee's stack stays inside this process, so it needs none.
//
// Every listener speaks HTTP/1.1 and h2c on one port (http-listener.ts); the upstream is
// undici for HTTP/1.1 instances and node:http2 for `protocol: grpc` ones (h2-upstream.ts).
//
// An Upgrade request (WebSocket) takes the same path; its 101 turns into a tunnel (tunnel.ts).
// A `protocol: tcp` service gets TCP listeners instead (tcp-proxy.ts).
import {type IncomingMessage, ServerResponse} from 'node:http'
import net, {type AddressInfo, type Socket} from 'node:net'
import type {Duplex, Readable} from 'node:stream'
import {Agent} from 'undici'
import type {ServiceConfig} from '../config/types.js'
import {dependencyEnvPrefix} from '../config/env-names.js'
import {describeRoute, matchRoute, rewritePath} from '../config/ingress-routes.js'
import type {Endpoint, Registry} from './registry.js'
import type {DestinationLoad} from './destination.js'
import {MeshError} from '../errors.js'
import {newRequestId, newSpanId, newTraceId, parseB3, parseTraceparent, type TraceContext} from '../telemetry/trace-context.js'
import {spanName} from '../telemetry/span.js'
import type {Clock} from '../time/clock.js'
import type {BodySink, ResponseBody} from './body.js'
import {Cancellation} from './cancellation.js'
import {Destination, type DestinationDeps} from './destination.js'
import {endToEndHeaders, firstHeader, hasHeader, headerObject, type HeaderMap, type HeaderPairs, MESH_HEADER_PREFIX, SERVED_BY_HEADER} from './headers.js'
import type {OutlierEvent} from './outlier/outlier-detector.js'
import {badRequest, grpcStatusHeaders, meshReplyHeaders, noHealthyUpstream, noRoute, ProxyError, replyOnSocket, sendProxyError} from './respond.js'
import {type CallContext, dropResponse, forward, type MeshRequest, type MeshResponse, type Peer, type Reply, type Service, stack} from './stack.js'
import {serverSpan} from './layers/server-span.js'
import {instanceActivator} from './layers/activator.js'
import {authorization} from './layers/authorization.js'
import {requestAuthentication} from './layers/request-authentication.js'
import type {RequestAuthenticators} from '../security/jwt/request-authenticators.js'
import {authorize} from './policy/authorization.js'
import {fault} from './layers/fault.js'
import type {FaultSet} from '../faults/fault-set.js'
import {discardTelemetry, type TelemetrySink} from './telemetry-sink.js'
import {networkLeaf} from './leaf.js'
import {H2Sessions} from './h2-upstream.js'
import {type TlsConnectOptions, UpstreamTls} from './upstream-tls.js'
import type {ServiceSecurity} from '../control/status.js'
import {openTunnel} from './tunnel.js'
import {DEFAULT_MAX_REQUEST_HEADERS, HttpListener} from './http-listener.js'
import {carriesBody, holdBody, MAX_REPLAY_BYTES, TeeBody} from './request-body.js'
import {isGrpcRequest} from './grpc.js'
import {proxyTcp} from './tcp-proxy.js'
import type {TcpMetrics} from '../telemetry/tcp-metrics.js'
import type {ActivationHub} from '../scaling/activation.js'
import {ConcurrencyAccount} from '../scaling/concurrency-gate.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import {normalizePath} from '../security/path-normalizer.js'
import {FORWARDED_CLIENT_CERT, forwardedClientCert} from '../security/peer-authentication.js'
import {INGRESS_IDENTITY, type WorkloadIdentities} from '../security/workload-identity.js'
import type {MtlsMode} from '../config/types.js'
import {type ConnectionSecurity, connectionSecurityOf, type TlsMaterial, TlsTerminator} from './tls-terminator.js'

/** Where a request goes: a destination's stack, or (inbound) one instance; and its origin-form path. */
interface Target {
  service: string
  path: string
  destination?: Destination
  endpoint?: Endpoint
}

/** How a listener decides where a request goes. */
export type ListenerRole =
  | {
      kind: 'ingress'
      routes: Array<{prefix: string; service: string}>
      preserveRequestId?: boolean
      /** The HTTPS ingress: TLS only, presenting this certificate (the user's own), else the mesh CA's for localhost. */
      https?: {material?: TlsMaterial}
      /** `ingress.tls.redirect`: every request is answered 308 to the HTTPS ingress on this port. */
      redirectToHttpsPort?: number
    }
  | {kind: 'outbound'; source: string; sourceVersion: string; sourceInstance: string; destination: string}
  | {kind: 'forward-proxy'; source: string; sourceVersion: string; sourceInstance: string}
  | {
      kind: 'inbound'
      instance: string
      service: string
      /**
       * A deploy check's own door to the instance (`--check`'s $CANARY_URL): plaintext on
       * loopback whatever the service's mtls mode, open for the check only. Its caller is
       * `unknown`, as at a published address taking plaintext.
       */
      plaintext?: true
    }

/** A TCP listener: a caller's, for one `protocol: tcp` dependency; or an instance's published address. */
export type TcpRole =
  | {kind: 'tcp-outbound'; source: string; sourceVersion: string; sourceInstance: string; destination: string}
  | {kind: 'tcp-inbound'; instance: string; service: string}

export interface ListenerInfo {
  role: ListenerRole | TcpRole
  port: number
  server: net.Server
  /** An HTTP listener's two protocols (HTTP/1.1 and h2c) behind `server`. */
  http?: HttpListener
  /** The listener speaks TLS presenting `service`'s certificate ('' for the user's own). */
  tls?: {service: string; terminator: TlsTerminator}
}

export interface DataPlaneOptions {
  clock: Clock
  faults: FaultSet
  /** `faults.allowHeaders`: honour x-mesh-fault-* request headers (never by default). */
  allowFaultHeaders?: boolean
  sink?: TelemetrySink
  /** Seeds every destination's Random (balancers, jitter, mirroring). */
  seed?: number
  onOutlierEvent?: (service: string, event: OutlierEvent) => void
  /** Where TCP connections are counted. */
  tcpMetrics?: TcpMetrics
  /** `ingress.maxRequestHeaders`: above it a request is answered 431 on every HTTP listener. */
  maxRequestHeaders?: number
  /** Every service's jwtRules and the ingress's (set before the data plane is made). */
  authn?: RequestAuthenticators
  /** The daemon's one hub between the activator (here) and the autoscaler: pokes, held counts, failed starts. */
  activation?: ActivationHub
  /** `functions.accountConcurrency`, read on each decision: requests in flight across every scaled version. */
  accountConcurrency?: () => number | undefined
}

/** What the listeners ask of the workload identities. */
type ListenerIdentities = Pick<WorkloadIdentities, 'ca' | 'spiffeId' | 'certificate' | 'onRotate'>

// Above undici's 4 s idle timeout so a pooled client never writes into a socket we just closed.
const KEEP_ALIVE_TIMEOUT_MS = 5_000
// Slow clients must send their headers promptly (slowloris → 408); a TLS handshake gets as long.
const HEADERS_TIMEOUT_MS = 10_000
// How long a silent client of a TCP published address under PERMISSIVE is given to start a TLS handshake.
const SERVER_FIRST_WAIT_MS = 1_000
// Every upstream pool's, plaintext or TLS (the connect timeout covers the TLS handshake).
const UPSTREAM_POOL = {keepAliveTimeout: 4_000, connections: 512, connectTimeout: 2_000}

export class DataPlane {
  private readonly destinations = new Map<string, Destination>()
  private readonly destinationDeps: DestinationDeps
  private readonly endpointsByInstance = new Map<string, Endpoint>()
  private readonly listeners: ListenerInfo[] = []
  private readonly agent = new Agent({keepAliveTimeout: UPSTREAM_POOL.keepAliveTimeout, connections: UPSTREAM_POOL.connections, connect: {timeout: UPSTREAM_POOL.connectTimeout}})
  // One HTTP/2 connection per instance carries every request to it at once, as gRPC clients do.
  private readonly h2 = new H2Sessions()
  /** Pools that originate TLS (policy.tls), per caller identity and destination. */
  private readonly upstreamTls: UpstreamTls
  private readonly inbound: Service
  private readonly inboundH2c: Service
  private readonly inflightByInstance = new Map<string, number>()
  private readonly clock: Clock
  private readonly sink: TelemetrySink
  allowFaultHeaders: boolean
  private inflight = 0
  /** Open sessions (upgraded to WebSocket or the like, and TCP connections), closed when the mesh stops. */
  private readonly sessions = new Set<Duplex>()
  private readonly faults: FaultSet
  private readonly tcpMetrics?: TcpMetrics
  private readonly tcpRandom: Random
  private draining = false
  /** What CONNECT tunnels through an instance's HTTP_PROXY are served by, per instance and service. */
  private readonly tunnels = new Map<string, HttpListener>()
  private drainWaiters: Array<() => void> = []
  /** What every HTTP listener refuses (read per request). */
  private readonly limits: {maxRequestHeaders: number}
  /** Identities, and the mesh-wide mTLS mode; set by useIdentities. */
  private security?: {readonly identities: ListenerIdentities; readonly mtls: MtlsMode}
  /** The listeners presenting each service's certificate (`ingress`: the HTTPS ingress's), given the new one on rotation. */
  private readonly terminators = new Map<string, Set<TlsTerminator>>()
  private stopRotations?: () => void
  /** The x-forwarded-client-cert last made for a caller (its Peer, or its mTLS connection's security). */
  private readonly xfcc = new WeakMap<object, {callee: string; value: string}>()

  constructor(registry: Registry, services: ServiceConfig[], weights: Map<string, Map<string, number>>, opts: DataPlaneOptions) {
    this.clock = opts.clock
    this.faults = opts.faults
    this.tcpMetrics = opts.tcpMetrics
    this.tcpRandom = new SeededRandom(seedFrom(opts.seed ?? 1, 'tcp'))
    this.allowFaultHeaders = opts.allowFaultHeaders ?? false
    this.limits = {maxRequestHeaders: opts.maxRequestHeaders ?? DEFAULT_MAX_REQUEST_HEADERS}
    const sink = (this.sink = opts.sink ?? discardTelemetry)
    const faults = {faults: opts.faults, allowHeaders: () => this.allowFaultHeaders}
    this.upstreamTls = new UpstreamTls(this.inflightByInstance, UPSTREAM_POOL)
    this.destinationDeps = {
      registry,
      faults,
      clock: opts.clock,
      leaf: networkLeaf(this.agent, this.h2, this.inflightByInstance, this.upstreamTls),
      sink,
      seed: opts.seed ?? 1,
      onOutlierEvent: opts.onOutlierEvent,
      authn: opts.authn,
      account: new ConcurrencyAccount(opts.accountConcurrency),
      activation: opts.activation,
    }
    // One activator per daemon: it answers for every destination's held requests.
    opts.activation?.reportHeld((service, version) => this.destinations.get(service)?.held(version) ?? 0)
    opts.activation?.onStartFailed((service, version, reason) => this.destinations.get(service)?.startFailed(version, reason))
    for (const service of services) this.addDestination(service, weights.get(service.name) ?? new Map())
    // Someone dialled an instance's published address: its service's authorization still applies (the caller is its certificate's, or "unknown").
    const policyOf = (req: MeshRequest) => this.destinations.get(req.destination)?.policy.authorization
    const authn = opts.authn
    const authnLayer = authn ? requestAuthentication((req) => authn.ofService(req.destination), () => undefined) : undefined
    // A scaled version's instance takes the call only with a place free (held meanwhile), as through the mesh.
    const slot = instanceActivator((service) => this.destinations.get(service)?.versionGates, opts.activation)
    const inbound = (bottom: Service) => stack(bottom).push(fault('callee', faults)).push(slot).push(authorization(policyOf)).push(authnLayer).push(serverSpan(sink, true)).service()
    const tlsOf = (req: MeshRequest) => this.destinations.get(req.destination)?.policy.tls
    this.inbound = inbound(this.destinationDeps.leaf('http', tlsOf))
    this.inboundH2c = inbound(this.destinationDeps.leaf('grpc', tlsOf))
  }

  /**
   * The mesh CA's workload identities and `security.mtls` (the mode of services without their own
   * `policy.mtls`), before any listener opens: published addresses then speak mTLS as each
   * service's mode says, and instances are told their caller (x-forwarded-client-cert). Never
   * set: plaintext everywhere, callers of published addresses unknown.
   */
  useIdentities(identities: ListenerIdentities, mtls: MtlsMode): void {
    this.stopRotations?.()
    this.security = {identities, mtls}
    this.stopRotations = identities.onRotate((service) => void this.rotated(service))
    this.upstreamTls.useIdentities(identities)
  }

  /** `mesh apply` changed `functions.accountConcurrency`: requests held for the account go now if it has room. */
  accountLimitChanged(): void {
    this.destinationDeps.account?.limitsChanged()
  }

  destination(service: string): Destination | undefined {
    return this.destinations.get(service)
  }

  /** A service callers can reach from now on (at start, and when `mesh apply` adds one). */
  addDestination(service: ServiceConfig, weights: Map<string, number>): Destination {
    const d = new Destination(service, weights, this.destinationDeps)
    this.destinations.set(service.name, d)
    return d
  }

  /** A service `mesh apply` removed, once its instances are gone: callers get 404 NR from now on. */
  removeDestination(service: string): void {
    this.destinations.get(service)?.close()
    this.destinations.delete(service)
  }

  /** Every instance's own address, also before it is healthy (the inbound listener needs it). */
  setInstance(endpoint: Endpoint): void {
    this.endpointsByInstance.set(endpoint.instance, endpoint)
  }

  /** Stopping: replies ask clients to close their connections. */
  get isDraining(): boolean {
    return this.draining
  }

  get inflightRequests(): number {
    return this.inflight
  }

  /** What requests to `service` hold now (`mesh status`): breaker counts, requests per instance. */
  load(service: string): DestinationLoad | undefined {
    const d = this.destinations.get(service)
    if (!d) return undefined
    const instances: Record<string, number> = {}
    for (const [name, e] of this.endpointsByInstance) if (e.service === service) instances[name] = this.inflightByInstance.get(name) ?? 0
    return {...d.load(), instances}
  }

  /** `service`'s mTLS mode (when the mesh runs a CA) and policy.tls mode, for `mesh status` and `mesh top`. */
  securityOf(service: string): ServiceSecurity | undefined {
    const d = this.destinations.get(service)
    if (!d) return undefined
    return {...(this.security ? {mtls: this.mtlsMode(service)} : {}), tls: d.policy.tls?.mode ?? 'DISABLE'}
  }

  /** How a health probe reaches `service`'s instances: over TLS when its policy.tls says they serve it. */
  healthTls(service: string): Promise<TlsConnectOptions | undefined> {
    return this.upstreamTls.probeOptions(service, this.destinations.get(service)?.policy.tls)
  }

  /** Requests under way to one instance (draining waits for 0). */
  inflightTo(instance: string): number {
    return this.inflightByInstance.get(instance) ?? 0
  }

  /** Stops one listener (an instance that left the mesh); in-flight requests on it finish. */
  async closeListener(info: ListenerInfo): Promise<void> {
    const i = this.listeners.indexOf(info)
    if (i >= 0) this.listeners.splice(i, 1)
    stopAccepting(info)
    if (info.tls) this.terminators.get(info.tls.service)?.delete(info.tls.terminator)
    // An instance's HTTP_PROXY goes with it, and so do the tunnels made through it.
    if (info.role.kind === 'forward-proxy') {
      const prefix = `${info.role.sourceInstance}\u0000`
      for (const [key, t] of this.tunnels) {
        if (!key.startsWith(prefix)) continue
        t.close()
        this.tunnels.delete(key)
      }
    }
  }

  /** An instance that left: requests still under way to it (past the drain's grace) are no longer counted. */
  forgetInstance(instance: string): void {
    const service = this.endpointsByInstance.get(instance)?.service
    if (service) this.destinations.get(service)?.versionGates.instanceGone(instance)
    this.endpointsByInstance.delete(instance)
    this.inflightByInstance.delete(instance)
  }

  /** An HTTP listener: HTTP/1.1 and HTTP/2 (h2c) on one port (http-listener.ts); TLS first on a published address or the HTTPS ingress. */
  async listen(role: ListenerRole, port = 0, wantedBy?: string): Promise<ListenerInfo> {
    const tls = await this.tlsOf(role)
    const listener = new HttpListener({
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      requestTimeoutMs: 300_000,
      limits: this.limits,
      onRequest: (req, res) => this.handle(role, req, res),
      onUpgrade: (req, socket, head) => this.handleUpgrade(role, req, socket, head),
      onConnect: (req, socket, head) => this.handleConnect(role, req, socket, head),
      tls: tls && {options: tls.options, material: tls.material, plaintextRefused: tls.plaintextRefused},
    })
    const info = await this.bind(listener.server, role, port, wantedBy)
    info.http = listener
    if (tls && listener.tls) this.presents(info, tls.service, listener.tls)
    return info
  }

  /** A TCP listener (on a port the OS picks): each connection is proxied to an instance of a `protocol: tcp` service. */
  async listenTcp(role: TcpRole): Promise<ListenerInfo> {
    if (role.kind !== 'tcp-inbound' || !this.security) return this.bind(net.createServer((socket) => this.connectTcp(role, socket)), role, 0)
    const service = role.service
    const terminator = new TlsTerminator(
      // A server-first protocol's client says nothing: under PERMISSIVE its silence means plaintext.
      {mode: () => this.mtlsMode(service), mutual: true, handshakeTimeoutMs: HEADERS_TIMEOUT_MS, silenceIsPlaintextMs: SERVER_FIRST_WAIT_MS},
      await this.materialOf(service),
      (socket, security) => this.connectTcp(role, socket, security),
    )
    const info = await this.bind(net.createServer((socket) => terminator.accept(socket)), role, 0)
    this.presents(info, service, terminator)
    return info
  }

  /** A service's own `policy.mtls` (as `mesh apply` set it last), else the mesh's; DISABLE without identities. */
  mtlsMode(service: string): MtlsMode {
    return this.destinations.get(service)?.policy.mtls ?? this.security?.mtls ?? 'DISABLE'
  }

  /** What a listener's TLS needs: a published address's (mTLS as its service's mode says), the HTTPS ingress's (TLS only). */
  private async tlsOf(role: ListenerRole) {
    if (role.kind === 'inbound' && this.security && !role.plaintext) {
      const service = role.service
      return {
        service,
        options: {mode: () => this.mtlsMode(service), mutual: true, handshakeTimeoutMs: HEADERS_TIMEOUT_MS},
        material: await this.materialOf(service),
        plaintextRefused: new ProxyError(
          400,
          'DPE',
          `the published address of "${service}" takes mTLS only (its mtls mode is STRICT): connect with TLS and a client certificate from the mesh CA ($MESH_TLS_CERT and $MESH_TLS_KEY of an instance; the CA is \`mesh ca --path\`), or call it through the mesh ($${dependencyEnvPrefix(service)}_URL)`,
        ),
      }
    }
    if (role.kind === 'ingress' && role.https) {
      const own = role.https.material
      if (!own && !this.security) throw new MeshError('MESH_CONFIG_INVALID', 'ingress.tls needs a certificate: give ingress.tls.cert and key, or let the mesh CA issue one.')
      return {
        // The user's own certificate is never rotated; the mesh CA's is, under the ingress's name.
        service: own ? '' : INGRESS_IDENTITY,
        options: {mode: (): MtlsMode => 'STRICT', mutual: false, handshakeTimeoutMs: HEADERS_TIMEOUT_MS},
        material: own ?? (await this.materialOf(INGRESS_IDENTITY)),
        plaintextRefused: new ProxyError(400, 'DPE', 'the HTTPS ingress (ingress.tls.port) speaks TLS only: use https://, or the plain ingress on ingress.port'),
      }
    }
    return undefined
  }

  /** `service`'s current certificate and key, and the CA its peers' certificates must chain to. */
  private async materialOf(service: string): Promise<TlsMaterial> {
    const identities = this.security!.identities
    const cert = await identities.certificate(service)
    return {cert: cert.certPem, key: cert.keyPem, ca: identities.ca.certPem}
  }

  /** `terminator` presents `service`'s certificate: a rotation replaces it. */
  private presents(info: ListenerInfo, service: string, terminator: TlsTerminator): void {
    info.tls = {service, terminator}
    if (!service) return
    let set = this.terminators.get(service)
    if (!set) this.terminators.set(service, (set = new Set()))
    set.add(terminator)
  }

  /** `service`'s certificate was replaced: its listeners present the new one to new connections. */
  private async rotated(service: string): Promise<void> {
    const terminators = this.terminators.get(service)
    if (!terminators?.size) return
    try {
      const material = await this.materialOf(service)
      for (const t of terminators) t.setMaterial(material)
    } catch {
      // The listeners keep presenting the certificate they have; the identities report the failure.
    }
  }

  private connectTcp(role: TcpRole, socket: Socket, security?: ConnectionSecurity): void {
    this.sessions.add(socket)
    socket.once('close', () => this.sessions.delete(socket))
    const deps = {faults: this.faults, clock: this.clock, random: this.tcpRandom, metrics: this.tcpMetrics}
    // As Envoy's network RBAC filter: a connection its service's policy refuses is closed at once.
    const peer = role.kind === 'tcp-inbound' ? (security?.peer ?? UNKNOWN_PEER) : this.peerOf(role)
    const source = peer.identity
    const policy = this.destinations.get(role.kind === 'tcp-inbound' ? role.service : role.destination)?.policy.authorization
    if (policy && !authorize(policy, {peer}).allowed) return void socket.destroy()
    if (role.kind === 'tcp-inbound') {
      // Someone dialled the instance's published address: that instance, whoever they are.
      const endpoint = this.endpointsByInstance.get(role.instance)
      return proxyTcp(socket, {source, destination: role.service}, {pick: () => endpoint}, deps)
    }
    const destination = this.destinations.get(role.destination)
    if (!destination) return void socket.resetAndDestroy()
    proxyTcp(socket, {source: role.source, sourceVersion: role.sourceVersion, destination: role.destination}, destination.connections, deps)
  }

  private async bind(server: net.Server, role: ListenerRole | TcpRole, port: number, wantedBy?: string): Promise<ListenerInfo> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(
            new MeshError('MESH_PORT_IN_USE', `port ${port} is already in use; ${wantedBy ?? 'a listener'} wants it.`, {
              cause: error,
              hints: [`Stop whatever listens on ${port} (\`lsof -i :${port}\`), or change the port in mesh.yaml.`],
            }),
          )
        } else reject(error)
      })
      server.listen(port, '127.0.0.1', () => resolve())
    })
    const info = {role, port: (server.address() as AddressInfo).port, server}
    this.listeners.push(info)
    return info
  }

  /** Stop accepting, let in-flight requests finish (up to graceMs), then close everything. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true
    // Only the edge stops taking requests: one under way may still call a dependency
    // through its instance's listeners, which close once nothing is under way.
    for (const l of this.listeners) if (l.role.kind === 'ingress') stopAccepting(l)
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.clock.setTimer(graceMs, resolve)
        this.drainWaiters.push(() => {
          timer.cancel()
          resolve()
        })
      })
    }
    for (const l of this.listeners) {
      stopAccepting(l)
      l.http?.closeAll()
    }
    for (const t of this.tunnels.values()) {
      t.close()
      t.closeAll()
    }
    for (const s of this.sessions) s.destroy()
    for (const d of this.destinations.values()) d.close()
    this.stopRotations?.()
    this.h2.close()
    await Promise.all([this.agent.close().catch(() => undefined), this.upstreamTls.close()])
  }

  private handle(role: ListenerRole, req: IncomingMessage, res: ServerResponse): void {
    if (role.kind === 'ingress' && role.redirectToHttpsPort !== undefined) return redirectToHttps(req, res, role.redirectToHttpsPort)
    this.inflight++
    const abort = new Cancellation()
    // 'close' comes once per response: on(), since once() wraps every listener in two more objects.
    // Ended, not finished: node:http2 reports a stream the client reset (RST_STREAM) as
    // writableFinished, and a request whose caller left must still be cancelled.
    res.on('close', () => {
      if (!res.writableEnded) abort.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
      this.requestEnded()
    })
    // HTTP/2 has no Connection header: its clients hear of a drain by GOAWAY (HttpListener.close).
    if (this.draining && req.httpVersionMajor !== 2) res.setHeader('connection', 'close')
    try {
      this.serve(role, new ClientReply(req, res, abort, this))
    } catch (error) {
      sendFailure(req, res, error)
    }
  }

  /**
   * An Upgrade request: node:http hands over the socket, and a ServerResponse on it
   * answers whatever is not a 101 (a mesh error, an instance that declined) as usual.
   */
  private handleUpgrade(role: ListenerRole, req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.inflight++
    const abort = new Cancellation()
    const res = new ServerResponse(req)
    res.assignSocket(socket)
    res.shouldKeepAlive = false
    res.on('finish', () => socket.end())
    // Under way until its answer (a 101 or not) is out, or the caller leaves first.
    let underWay = true
    const ended = () => {
      if (!underWay) return
      underWay = false
      this.requestEnded()
    }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (underWay) abort.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
      ended()
    })
    res.on('finish', ended)
    const client = new UpgradeReply(req, res, abort, this, req.headers.upgrade ?? '', socket, head, (tunnel, upstream, endpoint) => {
      // A session is not a request under way: `mesh down` closes it rather than waiting for it.
      ended()
      this.sessions.add(tunnel)
      tunnel.once('close', () => this.sessions.delete(tunnel))
      // Counted as a TCP connection from here on, as Istio counts an upgraded one.
      const metrics = this.tcpMetrics
      if (!metrics || !endpoint) return
      const caller = callerOf(role)
      const edge = {source: caller.source, sourceVersion: caller.sourceVersion, destination: endpoint.service, destinationVersion: endpoint.version, destinationInstance: endpoint.instance}
      metrics.opened(edge)
      upstream.once('close', () => metrics.closed(edge, upstream.bytesRead, upstream.bytesWritten))
    })
    try {
      this.serve(role, client)
    } catch (error) {
      client.fail(error)
    }
  }

  /**
   * CONNECT through an instance's HTTP_PROXY, as gRPC clients (and others) tunnel when a
   * proxy variable is set: to a mesh service by name, the tunnel's bytes are served as if
   * they had come to its `<DEP>_URL` listener (HTTP/1.1 or h2c, every call through the
   * service's stack) or, for a `protocol: tcp` service, its TCP listener. Nothing outside
   * the mesh is reached this way.
   */
  private handleConnect(role: ListenerRole, req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined)
    const refuse = (error: ProxyError) => replyOnSocket(socket, error)
    if (role.kind !== 'forward-proxy') return void refuse(new ProxyError(405, 'NR', 'CONNECT is served by an instance\'s HTTP_PROXY only'))
    const service = serviceFromHost(req.url ?? '')
    const destination = this.destinations.get(service)
    if (!destination) return void refuse(noRoute(service, [...this.destinations.keys()]))
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) socket.unshift(head)
    const outbound = {source: role.source, sourceVersion: role.sourceVersion, sourceInstance: role.sourceInstance, destination: service}
    if (destination.protocol === 'tcp') return this.connectTcp({kind: 'tcp-outbound', ...outbound}, socket)
    const key = `${role.sourceInstance}\u0000${service}`
    let tunnels = this.tunnels.get(key)
    if (!tunnels) {
      const as: ListenerRole = {kind: 'outbound', ...outbound}
      tunnels = new HttpListener({
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
        keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
        requestTimeoutMs: 300_000,
        limits: this.limits,
        onRequest: (req, res) => this.handle(as, req, res),
        onUpgrade: (req, socket, head) => this.handleUpgrade(as, req, socket, head),
      })
      this.tunnels.set(key, tunnels)
    }
    tunnels.accept(socket)
  }

  /** A request is over: a drain waiting for the last one goes on. */
  private requestEnded(): void {
    if (--this.inflight === 0 && this.draining) for (const w of this.drainWaiters.splice(0)) w()
  }

  /** Not async: a request without a body to hold goes to its stack without waiting a microtask. */
  private serve(role: ListenerRole, client: ClientReply): void {
    const {req} = client
    const headers = endToEndHeaders(req.rawHeaders)
    const address = req.socket.remoteAddress ?? '127.0.0.1'
    if (role.kind === 'ingress') sanitiseAtIngress(headers, address, role.https ? 'https' : 'http', this.allowFaultHeaders, role.preserveRequestId === true)
    else appendForwardedFor(headers, address)
    const incoming =
      parseTraceparent(firstHeader(headers, 'traceparent')) ??
      (headers['b3'] !== undefined || headers['x-b3-traceid'] !== undefined ? parseB3((name) => firstHeader(headers, name)) : undefined)
    if (!incoming) delete headers['tracestate']
    let target: Target
    try {
      // undici refuses a second Host (and would be blamed for it): the client's request is at fault.
      if (Array.isArray(headers.host)) throw badRequest('it has more than one Host header')
      target = this.resolve(role, req, headers)
    } catch (error) {
      // No route, unknown host: the mesh answered itself before any stack, so record that hop here.
      if (error instanceof ProxyError && role.kind !== 'inbound') {
        const caller = callerOf(role)
        const method = req.method ?? 'GET'
        const path = req.url ?? '/'
        this.sink.record({
          traceId: incoming?.traceId ?? newTraceId(),
          spanId: newSpanId(),
          parentId: incoming?.parentId,
          kind: 'client',
          name: spanName(method, path),
          service: caller.source,
          version: caller.sourceVersion,
          instance: caller.sourceInstance,
          peerService: 'unknown',
          method,
          path,
          status: error.status,
          startMs: this.clock.wallNow(),
          durationMs: 0,
          responseFlags: error.flag,
          cause: error.message,
        })
      }
      throw error
    }

    if (!carriesBody(req)) return void this.call(role, client, target, headers, incoming, null, true)
    if (!target.destination?.policy.retries) return void this.call(role, client, target, headers, incoming, req, false)
    if (req.httpVersionMajor === 2) {
      // An HTTP/2 request may stream for the call's whole life (gRPC client and bidirectional
      // streams answer message by message): it goes on at once, and a retry replays the copy
      // kept of it, once it ended within the bound (Envoy's way).
      const body = new TeeBody(req, MAX_REPLAY_BYTES)
      const meshReq = this.call(role, client, target, headers, incoming, body, false)
      body.onWhole((whole) => {
        meshReq.body = whole
        meshReq.replayable = true
      })
      return
    }
    holdBody(req, MAX_REPLAY_BYTES).then(
      ({body, replayable}) => this.call(role, client, target, headers, incoming, body, replayable),
      (error) => client.fail(error),
    )
  }

  private call(
    role: ListenerRole,
    client: ClientReply,
    target: Target,
    headers: HeaderMap,
    incoming: TraceContext | undefined,
    body: Buffer | Readable | null,
    replayable: boolean,
  ): MeshRequest {
    const destination = target.destination
    const caller = callerOf(role)
    const {req, abort} = client
    const security = role.kind === 'inbound' ? connectionSecurityOf(req.socket) : undefined
    const peer = security?.peer ?? this.peerOf(role)
    this.forwardClientCert(headers, peer, target.service, security)
    const meshReq: MeshRequest = {
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      body,
      replayable,
      destination: target.service,
      // A published address's caller is who its certificate says (mTLS), else unknown.
      source: security?.peer ? security.peer.identity : caller.source,
      peer,
      sourceVersion: caller.sourceVersion,
      sourceInstance: caller.sourceInstance,
      upgrade: client.upgrade,
    }
    const ctx: CallContext = {
      clock: this.clock,
      signal: abort.signal,
      canceller: abort,
      traceId: incoming?.traceId ?? newTraceId(),
      traceFlags: incoming?.flags ?? '01',
      // An inbound call has no client side here; its server span hangs off the caller's span.
      clientSpanId: role.kind === 'inbound' ? (incoming?.parentId ?? '') : newSpanId(),
      parentSpanId: incoming?.parentId,
      decision: {},
      attempt: 1,
      endpoint: target.endpoint,
    }
    forward(destination ? destination.service : this.inboundTo(target.service), meshReq, ctx, client)
    return meshReq
  }

  /**
   * Who is calling, for authorization: the listener vouches for it, since each instance's
   * outbound listeners are its own (one shared object per listener, none per request).
   */
  private peerOf(role: ListenerRole | Extract<TcpRole, {kind: 'tcp-outbound'}>): Peer {
    if (role.kind === 'inbound') return UNKNOWN_PEER
    let peer = listenerPeers.get(role)
    if (!peer) {
      const identity = role.kind === 'ingress' ? 'ingress' : role.source
      peer = {identity, ...(this.security ? {principal: this.security.identities.spiffeId(identity)} : {}), authn: 'listener'}
      listenerPeers.set(role, peer)
    }
    return peer
  }

  /**
   * Envoy's SANITIZE_SET: an x-forwarded-client-cert from the caller is never passed on; one
   * naming the caller the mesh established is set instead, as the callee's sidecar would under
   * mTLS (none where the callee's mode is DISABLE, or the caller is not known).
   */
  private forwardClientCert(headers: HeaderMap, peer: Peer, callee: string, security: ConnectionSecurity | undefined): void {
    if (headers[FORWARDED_CLIENT_CERT] !== undefined) delete headers[FORWARDED_CLIENT_CERT]
    if (!this.security || !peer.principal || this.mtlsMode(callee) === 'DISABLE') return
    // One value per caller (a listener's, or a connection's under mTLS) and callee, not one per request.
    const key = security ?? peer
    let made = this.xfcc.get(key)
    if (made?.callee !== callee) {
      made = {callee, value: forwardedClientCert(this.security.identities.spiffeId(callee), peer.principal, security?.certHash)}
      this.xfcc.set(key, made)
    }
    headers[FORWARDED_CLIENT_CERT] = made.value
  }

  /** The stack of a call to one instance's published address: its service's instances speak HTTP/1.1 or h2c. */
  private inboundTo(service: string): Service {
    return this.destinations.get(service)?.protocol === 'grpc' ? this.inboundH2c : this.inbound
  }

  /** Which destination (or, for an inbound listener, which instance) gets this request, and its origin-form path. */
  private resolve(role: ListenerRole, req: IncomingMessage, headers: HeaderMap): Target {
    const requestTarget = req.url ?? '/'
    if (req.method === 'CONNECT' && (role.kind === 'outbound' || role.kind === 'forward-proxy')) {
      throw new ProxyError(405, 'NR', 'CONNECT over HTTP/2 is not supported by the mesh proxy; use HTTP/1.1 CONNECT, or call services with http://')
    }
    // Once, on every listener: what authorization, routes and fault selectors judge is what the service gets.
    const normal = normalizePath(requestTarget)
    if (typeof normal !== 'string') throw new ProxyError(400, 'DPE', `bad request path: ${normal.reason}`)
    let path = normal
    let service: string
    switch (role.kind) {
      case 'inbound': {
        const endpoint = this.endpointsByInstance.get(role.instance)
        if (!endpoint) throw noHealthyUpstream(role.service, 0)
        return {service: role.service, path, endpoint}
      }
      case 'ingress': {
        const route = matchRoute(role.routes, path)
        if (!route) {
          // ASCII: the reason also goes out as a header, where anything else would read "?".
          const routes = role.routes.map((r) => describeRoute(r, '->')).join(', ')
          throw new ProxyError(404, 'NR', `no route: no ingress route matches path ${path.split('?')[0]} (routes: ${routes || 'none'})`)
        }
        service = route.service
        path = rewritePath(route, path)
        break
      }
      case 'outbound':
      case 'forward-proxy': {
        if (!requestTarget.startsWith('/')) {
          // Absolute form, as curl, requests and Go send through HTTP_PROXY: route by host name.
          let url: URL
          try {
            url = new URL(requestTarget)
          } catch {
            throw new ProxyError(400, 'DPE', `bad request target ${requestTarget}`)
          }
          service = serviceFromHost(url.hostname)
        } else if (role.kind === 'outbound') {
          service = role.destination
        } else {
          service = serviceFromHost(firstHeader(headers, 'host') ?? '')
        }
        break
      }
    }
    const destination = this.destinations.get(service)
    if (!destination) throw noRoute(service, [...this.destinations.keys()])
    if (destination.protocol === 'tcp') {
      throw new ProxyError(502, 'NR', `"${service}" is protocol: tcp: connect to it at $${dependencyEnvPrefix(service)}_ADDR, not over HTTP`)
    }
    return {service, path, destination}
  }
}

/** No new connections; an HTTP listener's idle ones close (HTTP/2: GOAWAY), requests under way finish. */
function stopAccepting(listener: ListenerInfo): void {
  if (listener.http) listener.http.close()
  else listener.server.close()
}

/** The mesh's own reply to a request that failed: 5xx with the flag and reason, or a reset once headers went out. */
function sendFailure(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  req.resume()
  const grpc = req.httpVersionMajor === 2 && isGrpcRequest(req.headers as HeaderMap)
  sendProxyError(res, error instanceof ProxyError ? error : new ProxyError(500, 'DC', `mesh internal error: ${(error as Error).message}`), grpc)
}

/** One client request, and where the stack's answer is written. */
class ClientReply implements Reply {
  protected settled = false
  /** The protocol an Upgrade request asks for (UpgradeReply). */
  readonly upgrade?: string = undefined

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly abort: Cancellation,
    /** Read when the answer goes out: a drain that began meanwhile asks the client to close. */
    private readonly plane: {readonly isDraining: boolean},
  ) {}

  ok(response: MeshResponse): void {
    const {res, abort} = this
    // A caller that already left gets nothing: its response would wait for a drain that
    // never comes, and hold its breaker slot and instance count with it.
    if (this.settled || abort.signal.aborted) return dropResponse(response)
    this.settled = true
    try {
      const out = response.headers
      if (response.endpoint) out.push(SERVED_BY_HEADER, response.endpoint.instance)
      const http2 = this.req.httpVersionMajor === 2
      if (this.plane.isDraining && !http2) out.push('connection', 'close')
      const answer = response.body
      // gRPC's Trailers-Only answer (its status in the headers, no body) must end the stream
      // on its HEADERS frame; node:http2 does that only for headers set before end().
      if (http2 && answer && hasHeader(out, 'grpc-status')) {
        res.statusCode = response.status
        const headers = headerObject(out)
        for (const name in headers) res.setHeader(name, headers[name])
      } else if (http2 || !answer) res.writeHead(response.status, out)
      if (!answer) return void res.end()
      // A client that leaves mid-body: the body (and the exchange behind it) stops.
      abort.signal.addEventListener('abort', () => answer.destroy(abort.reason as Error))
      const sink = new ClientSink(res, answer, http2 && isGrpcRequest(this.req.headers as HeaderMap))
      // HTTP/1.1 sends the head with the first body bytes anyway: held until then, a body that
      // fails before its first byte becomes the mesh's reply (502 and why), not an empty one.
      if (!http2) sink.headFirst(response.status, out)
      answer.pipeTo(sink)
    } catch (error) {
      response.body?.destroy()
      sendFailure(this.req, res, error)
    }
  }

  fail(error: unknown): void {
    if (this.settled) return
    this.settled = true
    sendFailure(this.req, this.res, error)
  }
}

/** An Upgrade request's client: a 101 joins its socket to the instance's; any other answer goes out as usual, then the connection closes. */
class UpgradeReply extends ClientReply {
  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    abort: Cancellation,
    plane: {readonly isDraining: boolean},
    override readonly upgrade: string,
    private readonly socket: Socket,
    private readonly head: Buffer,
    private readonly onTunnel: (client: Duplex, upstream: Socket, endpoint: Endpoint | undefined) => void,
  ) {
    super(req, res, abort, plane)
  }

  override ok(response: MeshResponse): void {
    const tunnel = response.tunnel
    if (!tunnel) return super.ok(response)
    if (this.settled || this.socket.destroyed) return dropResponse(response)
    this.settled = true
    const headers = response.headers
    if (response.endpoint) headers.push(SERVED_BY_HEADER, response.endpoint.instance)
    this.res.detachSocket(this.socket)
    openTunnel(this.socket, this.head, tunnel.socket, tunnel.protocol || this.upgrade, headers)
    this.onTunnel(this.socket, tunnel.socket as Socket, response.endpoint)
  }
}

/** The client's response as a body's sink: a reset when the body is cut. */
class ClientSink implements BodySink {
  private status = 0
  /** The response head not written yet (HTTP/1.1, before the first body byte). */
  private head: HeaderPairs | undefined = undefined

  constructor(
    private readonly res: ServerResponse,
    private readonly body: ResponseBody,
    /** A gRPC call: a body the mesh cuts ends with its status in the trailers, not a reset. */
    private readonly grpc = false,
  ) {}

  headFirst(status: number, headers: HeaderPairs): void {
    this.status = status
    this.head = headers
  }

  private sendHead(head: HeaderPairs): void {
    this.head = undefined
    this.res.writeHead(this.status, head)
  }

  write(chunk: Buffer): boolean {
    if (this.head !== undefined) this.sendHead(this.head)
    if (this.res.write(chunk)) return true
    this.res.once('drain', () => this.body.resume())
    return false
  }

  end(trailers?: HeaderPairs): void {
    if (this.head !== undefined) this.sendHead(this.head)
    if (trailers) this.res.addTrailers(headerObject(trailers))
    this.res.end()
  }

  abort(error: Error): void {
    if (this.head !== undefined) {
      this.head = undefined
      // Nothing of the answer went out: the client hears why (502 UPE, 504 UT), never an empty reply.
      if (error instanceof ProxyError && !this.res.destroyed) return sendFailure(this.res.req, this.res, error)
    }
    // The overall timeout mid-stream: DEADLINE_EXCEEDED with the reason, as gRPC clients understand it.
    if (this.grpc && error instanceof ProxyError) {
      this.res.addTrailers({...grpcStatusHeaders(error), ...meshReplyHeaders(error)})
      return void this.res.end()
    }
    // HTTP/1.1: a reset (RST), so no client takes what came for the whole answer. HTTP/2: the stream's.
    if (this.res.req.httpVersionMajor !== 2) this.res.socket?.resetAndDestroy()
    this.res.destroy()
  }
}

interface Caller {
  source: string
  sourceVersion?: string
  sourceInstance?: string
}

const INGRESS: Caller = {source: 'ingress'}
// Someone called an instance's published address directly: the mesh cannot tell who.
const UNKNOWN: Caller = {source: 'unknown'}

/** Who is calling, as the listener knows it (shared objects: nothing allocated per request). */
function callerOf(role: ListenerRole): Caller {
  return role.kind === 'ingress' ? INGRESS : role.kind === 'inbound' ? UNKNOWN : role
}

const UNKNOWN_PEER: Peer = {identity: 'unknown', authn: 'listener'}
const listenerPeers = new WeakMap<ListenerRole | TcpRole, Peer>()

/** `ingress.tls.redirect`: the plain ingress sends every request to the HTTPS one (308 keeps the method and body). */
function redirectToHttps(req: IncomingMessage, res: ServerResponse, port: number): void {
  req.resume()
  const host = (req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '127.0.0.1').replace(/:\d+$/, '')
  res.writeHead(308, {location: `https://${host}:${port}${req.url ?? '/'}`, 'content-length': '0'})
  res.end()
}

/** `catalog`, `catalog:9080`, `catalog.mesh` → `catalog`. */
function serviceFromHost(host: string): string {
  return host.replace(/:\d+$/, '').split('.')[0].toLowerCase()
}

function appendForwardedFor(headers: HeaderMap, client: string): void {
  const prior = firstHeader(headers, 'x-forwarded-for')
  headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client
}

/** Nothing from outside may claim to be the mesh, or forge where it came from. */
function sanitiseAtIngress(headers: HeaderMap, client: string, proto: 'http' | 'https', allowFaultHeaders: boolean, preserveRequestId: boolean): void {
  for (const name in headers) {
    // Names are lower case here; most do not start with x- at all.
    if (name.charCodeAt(0) !== 120 || name.charCodeAt(1) !== 45) continue
    if (allowFaultHeaders && name.startsWith('x-mesh-fault-')) continue
    if (name.startsWith(MESH_HEADER_PREFIX) || name.startsWith('x-forwarded-')) delete headers[name]
  }
  headers['x-forwarded-for'] = client
  headers['x-forwarded-proto'] = proto
  // No x-forwarded-host: the Host header goes through unchanged (as Envoy leaves it unless
  // a route rewrites the host), so it would only repeat it on every request.
  // A fresh id for every request from outside, as Envoy makes one: a caller's id is kept only
  // when the mesh is told to trust it (ingress.preserveRequestId), and only a single one.
  if (!preserveRequestId || typeof headers['x-request-id'] !== 'string' || headers['x-request-id'] === '') headers['x-request-id'] = newRequestId()
}

