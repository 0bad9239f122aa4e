// TLS the sidecar originates to instances (`policy.tls`, Istio's DestinationRule `tls`),
// at the bottom of the stack. Connections are pooled per (caller identity, destination,
// settings): the certificate presented is part of a connection, so two callers never share
// one, as Envoy keeps a cluster's connections per upstream TLS context.
//
//   leaf ──policy.tls?──▶ DISABLE: the plaintext pool (one undici Agent, h2c sessions)
//                        └ else: pool(caller, destination) ──▶ undici Agent / node:http2 sessions over TLS
//
//   ISTIO_MUTUAL  present the caller's mesh certificate; the instance's must chain to the mesh CA and
//                 carry the destination's SPIFFE ID (its URI SAN, not its host name)
//   MUTUAL        present the user's certificate and key; verify with caCertificates (or the system's roots)
//   SIMPLE        verify only (an https `address:` service), with `sni` and `subjectAltNames`
//
// A caller's certificate rotating retires its pools (and the callee's, the pools to it):
// requests under way finish on the old connections (undici's close() waits for them) and
// new ones get the new certificate.
import {readFileSync} from 'node:fs'
import type http2 from 'node:http2'
import tls, {type PeerCertificate} from 'node:tls'
import {Agent} from 'undici'
import type {TlsPolicy} from '../config/types.js'
import type {WorkloadIdentities} from '../security/workload-identity.js'
import {H2Sessions, h2Upstream} from './h2-upstream.js'
import {SPIFFE_MISMATCH} from './tls-errors.js'
import type {LeafProtocol} from './leaf.js'
import type {MeshRequest, Service, UpstreamSecurity} from './stack.js'
import {upstream} from './upstream.js'

/** What origination asks of the workload identities: the caller's certificate, the mesh CA, rotations. */
export type MeshIdentities = Pick<WorkloadIdentities, 'ca' | 'spiffeId' | 'certificate' | 'onRotate'>

/** The TLS settings each pool's connections were made with. */
export type TlsConnectOptions = tls.ConnectionOptions

/** One caller's connections to one destination under one policy: both protocols' leaves. */
interface Pool {
  readonly security: UpstreamSecurity
  readonly http: Service
  readonly grpc: Service
  readonly agent: Agent
  readonly h2: H2Sessions
}

interface DestinationPools {
  policy: TlsPolicy
  /** By caller identity (ISTIO_MUTUAL), or '' (MUTUAL, SIMPLE: the certificate is the policy's). */
  pools: Map<string, Pool | Promise<Pool>>
}

/** undici's settings for the plaintext pool, kept for the TLS ones (the data plane's). */
export interface PoolSettings {
  keepAliveTimeout: number
  connections: number
  connectTimeout: number
}

/** No caller identity: someone dialled a published address the mesh could not authenticate. */
const NO_IDENTITY = 'unknown'

export class UpstreamTls {
  private readonly byDestination = new Map<string, DestinationPools>()
  private stopWatching?: () => void
  private identities?: MeshIdentities
  private closed = false

  constructor(
    private readonly inflight: Map<string, number>,
    private readonly settings: PoolSettings,
  ) {}

  /** The mesh CA's identities (mesh up issues them once the data plane exists): what ISTIO_MUTUAL presents and checks. */
  useIdentities(identities: MeshIdentities): void {
    this.stopWatching?.()
    this.identities = identities
    this.stopWatching = identities.onRotate((service) => this.rotated(service))
  }

  /**
   * The pool `req` goes through under `policy`: at once when it exists, a promise the first
   * time a caller's certificate must be fetched. Throws what makes the pool impossible (no
   * mesh identities for ISTIO_MUTUAL; a certificate file gone since `mesh validate`).
   */
  pool(req: MeshRequest, policy: TlsPolicy): Pool | Promise<Pool> {
    let d = this.byDestination.get(req.destination)
    // An apply that left the settings as they were: adopt the new object, so the next request compares by identity.
    if (d && d.policy !== policy && samePolicy(d.policy, policy)) d.policy = policy
    if (!d || d.policy !== policy) {
      // `mesh apply` changed the settings: the old connections finish what they carry, then close.
      if (d) for (const p of d.pools.values()) void retire(p)
      d = {policy, pools: new Map()}
      this.byDestination.set(req.destination, d)
    }
    const caller = policy.mode === 'ISTIO_MUTUAL' ? callerOf(req) : ''
    const existing = d.pools.get(caller)
    if (existing) return existing
    const made = this.make(caller, req.destination, policy)
    d.pools.set(caller, made)
    if (made instanceof Promise) {
      const pools = d.pools
      made.then(
        (pool) => {
          // Retired (rotated, re-applied, closed) while it was being made: nobody else will close it.
          if (pools.get(caller) === made) pools.set(caller, pool)
          else void retire(pool)
        },
        () => {
          if (pools.get(caller) === made) pools.delete(caller)
        },
      )
    }
    return made
  }

  /**
   * How a health probe connects to `service`'s instances under `policy`: TLS that verifies
   * nothing (readiness is the probe's question; a certificate that does not verify fails the
   * requests, with the reason), presenting the service's own mesh certificate under
   * ISTIO_MUTUAL (the mesh checking its own workload, as Istio's agent probes its pod) or the
   * user's under MUTUAL, so an app that requires a client certificate can still be probed.
   */
  async probeOptions(service: string, policy: TlsPolicy | undefined): Promise<TlsConnectOptions | undefined> {
    if (!policy || policy.mode === 'DISABLE') return undefined
    const base: TlsConnectOptions = {rejectUnauthorized: false, ...(policy.sni ? {servername: policy.sni} : {})}
    if (policy.mode === 'SIMPLE') return base
    if (policy.mode === 'MUTUAL') {
      try {
        const {cert, key} = userTls(policy)
        return {...base, cert, key}
      } catch {
        // A file gone since `mesh validate`: the probe goes without, and requests say why they fail.
        return base
      }
    }
    const mine = this.identities ? await this.identities.certificate(service).catch(() => undefined) : undefined
    return mine ? {...base, cert: mine.certPem, key: mine.keyPem} : base
  }

  /** Closes every pool; requests under way finish. */
  async close(): Promise<void> {
    this.closed = true
    this.stopWatching?.()
    const all = [...this.byDestination.values()].flatMap((d) => [...d.pools.values()])
    this.byDestination.clear()
    await Promise.all(all.map(retire))
  }

  /** How many pools are open (for tests and `mesh status`). */
  get size(): number {
    let n = 0
    for (const d of this.byDestination.values()) n += d.pools.size
    return n
  }

  private make(caller: string, destination: string, policy: TlsPolicy): Pool | Promise<Pool> {
    if (this.closed) throw new Error('the data plane is stopping')
    if (policy.mode !== 'ISTIO_MUTUAL') return this.open(userTls(policy), {mode: policy.mode as 'MUTUAL' | 'SIMPLE'})
    const identities = this.identities
    if (!identities) throw new Error('ISTIO_MUTUAL needs the mesh CA, and this data plane has none')
    const expected = identities.spiffeId(destination)
    const options = (mine?: {certPem: string; keyPem: string}): TlsConnectOptions => ({
      // One context per pool: every connection of it presents the same certificate.
      secureContext: tls.createSecureContext({ca: identities.ca.certPem, ...(mine ? {cert: mine.certPem, key: mine.keyPem} : {})}),
      ...(policy.sni ? {servername: policy.sni} : {}),
      checkServerIdentity: (_host, cert) => checkSpiffeId(cert, policy.subjectAltNames ?? [expected]),
    })
    if (caller === NO_IDENTITY) return this.open(options(), {mode: 'ISTIO_MUTUAL', destination: expected})
    const security: UpstreamSecurity = {mode: 'ISTIO_MUTUAL', source: identities.spiffeId(caller), destination: expected}
    return identities.certificate(caller).then((mine) => this.open(options(mine), security))
  }

  private open(tlsOptions: TlsConnectOptions, security: UpstreamSecurity): Pool {
    const {keepAliveTimeout, connections, connectTimeout} = this.settings
    const agent = new Agent({keepAliveTimeout, connections, connect: {timeout: connectTimeout, ...tlsOptions}})
    const h2 = new H2Sessions({...(tlsOptions as http2.SecureClientSessionOptions), ALPNProtocols: ['h2']})
    return {security, agent, h2, http: upstream(agent, this.inflight, true), grpc: h2Upstream(h2, this.inflight)}
  }

  /**
   * `service`'s certificate changed: the pools presenting it are replaced, and so are the pools
   * to it, so the next request checks the certificate it presents now (a `--cert` fault shows at
   * once, not when an idle connection happens to close).
   */
  private rotated(service: string): void {
    const to = this.byDestination.get(service)
    // One still being made connects afresh anyway, checking what the callee presents then. Only
    // ISTIO_MUTUAL checks the mesh certificate: MUTUAL and SIMPLE pools trust the user's CA files.
    if (to && to.policy.mode === 'ISTIO_MUTUAL') {
      for (const [caller, p] of to.pools) {
        if (p instanceof Promise) continue
        to.pools.delete(caller)
        void retire(p)
      }
    }
    for (const d of this.byDestination.values()) {
      const pool = d.pools.get(service)
      // One still being made gets the certificate current when it is ready (a first issue also says onRotate).
      if (!pool || pool instanceof Promise) continue
      d.pools.delete(service)
      void retire(pool)
    }
  }
}

/** The identity the mesh presents for `req`: the certificate's when the caller proved one, else the listener's. */
export function callerOf(req: MeshRequest): string {
  return req.peer.authn === 'mtls' ? req.peer.identity : req.source
}

export function leafOf(pool: Pool, protocol: LeafProtocol): Service {
  return protocol === 'grpc' ? pool.grpc : pool.http
}

/** Closes a pool once what it carries is done; one still being made closes when it is. */
async function retire(pool: Pool | Promise<Pool>): Promise<void> {
  const p = await Promise.resolve(pool).catch(() => undefined)
  if (!p) return
  p.h2.close()
  await p.agent.close().catch(() => undefined)
}

function samePolicy(a: TlsPolicy, b: TlsPolicy): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** MUTUAL and SIMPLE: the user's files, read when the first request needs them. */
function userTls(policy: TlsPolicy): TlsConnectOptions {
  const read = (key: 'caCertificates' | 'clientCertificate' | 'privateKey') => {
    const file = policy[key]!
    try {
      return readFileSync(file, 'utf8')
    } catch (error) {
      throw Object.assign(new Error(`cannot read policy.tls.${key} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`), {code: 'ERR_TLS_FILE'})
    }
  }
  const names = policy.subjectAltNames
  return {
    ...(policy.caCertificates ? {ca: read('caCertificates')} : {}),
    ...(policy.mode === 'MUTUAL' ? {cert: read('clientCertificate'), key: read('privateKey')} : {}),
    ...(policy.sni ? {servername: policy.sni} : {}),
    // Istio checks the SNI when no subjectAltNames are given (VERIFY_CERTIFICATE_AT_CLIENT).
    checkServerIdentity: (host, cert) => (names ? checkSubjectAltNames(cert, names) : tls.checkServerIdentity(policy.sni ?? host, cert)),
  }
}

/** The URI SANs of a certificate (`URI:spiffe://…` entries of subjectaltname). */
function uriSans(cert: PeerCertificate): string[] {
  const out: string[] = []
  for (const part of (cert.subjectaltname ?? '').split(', ')) if (part.startsWith('URI:')) out.push(part.slice(4))
  return out
}

/** ISTIO_MUTUAL: the instance proves the destination's identity by its URI SAN, whatever host it listens on. */
export function checkSpiffeId(cert: PeerCertificate, expected: readonly string[]): Error | undefined {
  const got = uriSans(cert)
  if (got.some((uri) => expected.includes(uri))) return undefined
  const error = new Error(`expected ${expected.join(' or ')}, got ${got.length ? got.join(', ') : `no SPIFFE ID (SANs: ${cert.subjectaltname || 'none'})`}`)
  return Object.assign(error, {code: SPIFFE_MISMATCH})
}

/** MUTUAL / SIMPLE with subjectAltNames: one of them must name the server (URIs exactly; DNS and IP as TLS matches a host). */
function checkSubjectAltNames(cert: PeerCertificate, names: readonly string[]): Error | undefined {
  const uris = uriSans(cert)
  for (const name of names) {
    if (name.includes('://') ? uris.includes(name) : tls.checkServerIdentity(name, cert) === undefined) return undefined
  }
  const error = new Error(`the certificate's SANs (${cert.subjectaltname || 'none'}) match none of subjectAltNames ${names.join(', ')}`)
  return Object.assign(error, {code: 'ERR_TLS_CERT_ALTNAME_INVALID'})
}
