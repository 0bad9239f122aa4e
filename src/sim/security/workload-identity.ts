// Each service's workload identity: an X.509 certificate from the mesh CA whose URI SAN is the
// service's SPIFFE ID, as istiod issues one per workload, rotated at half its life as Istio's
// agent does. Listeners and upstreams ask for a service's SecureContext and re-ask when
// onRotate says it was replaced (rotation, `mesh certs rotate`, a certificate fault).
//
//   certificate(svc) ─first ask─▶ ca.issue({uri: spiffe://td/ns/mesh/sa/svc}) ─▶ timer at ttl/2 ─▶ rotate ─▶ onRotate(svc)
//   setFault(svc, 'expired') ─▶ presents a bad certificate (the genuine one keeps rotating underneath) ─▶ onRotate(svc)
//
// Every change to one service's certificate runs in that service's queue, so a rotation and
// a fault asked for at once cannot interleave, and certificate() answers once both are done.
import tls from 'node:tls'
import {MeshCA, type IssuedCertificate} from './mesh-ca.js'
import {spiffeId} from './spiffe.js'
import type {Clock, Timer} from '../time/clock.js'
import type {CertFault} from '../faults/fault.js'

export interface WorkloadCertificate {
  service: string
  spiffeId: string
  certPem: string
  keyPem: string
  /** Hex, as `openssl x509 -serial` prints it. */
  serial: string
  notBefore: Date
  notAfter: Date
  /** How many times the genuine certificate was replaced since the first one. */
  rotations: number
}

export {CERT_FAULTS, type CertFault} from '../faults/fault.js'

/** The certificate a service presents, as `mesh certs` lists it. */
export interface CertificateInfo {
  service: string
  /** The SPIFFE ID in the presented certificate (another service's under a wrong-identity fault). */
  spiffeId: string
  serial: string
  notBefore: string
  notAfter: string
  rotations: number
  /** Set while a certificate fault makes the service present a bad certificate. */
  fault?: CertFault
  /** When the genuine certificate is rotated next. */
  nextRotation?: string
}

export interface WorkloadIdentitiesOptions {
  caDir: string
  trustDomain: string
  mesh: string
  certTtlMs: number
  clock: Clock
  /** A rotation that failed is retried; this hears why (the daemon's log). */
  onError?: (service: string, error: Error) => void
}

/** The longest delay setTimeout keeps (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** How far in the past an "expired" fault's certificate ended: clearly expired, whatever the clocks' skew. */
const EXPIRED_AGO_MS = 3600_000
/** The HTTPS ingress's server certificate, in onRotate and the listing: no service may be called so (mesh-schema.ts). */
export const INGRESS_IDENTITY = 'ingress'

interface Entry {
  service: string
  /** The certificate the CA issued last; what the service presents when no fault is on. */
  genuine?: WorkloadCertificate
  /** What the service presents now: the genuine one, or the fault's. */
  presented?: WorkloadCertificate
  fault?: CertFault
  context?: tls.SecureContext
  timer?: Timer
  nextRotationAt?: number
  queue: Promise<void>
}

export class WorkloadIdentities {
  private readonly entries = new Map<string, Entry>()
  private readonly listeners = new Set<(service: string) => void>()
  /** The "untrusted" fault's issuer: made once, kept in memory only. */
  private foreignCa?: Promise<MeshCA>
  private stopped = false

  private constructor(
    readonly ca: MeshCA,
    readonly trustDomain: string,
    readonly mesh: string,
    private readonly o: WorkloadIdentitiesOptions,
  ) {}

  /** The mesh CA in `caDir` (created there on first use, reused after; a broken one is MESH_CA_INVALID naming the file). */
  static async start(o: WorkloadIdentitiesOptions): Promise<WorkloadIdentities> {
    const ca = await MeshCA.loadOrCreate(o.caDir, o.trustDomain, new Date(o.clock.wallNow()))
    return new WorkloadIdentities(ca, o.trustDomain, o.mesh, o)
  }

  spiffeId(service: string): string {
    return spiffeId(this.trustDomain, this.mesh, service)
  }

  /** Issues on first ask; later calls return the current one (rotated at half life). */
  async certificate(service: string): Promise<WorkloadCertificate> {
    return (await this.settled(service)).presented!
  }

  /** What `service` presents now, without waiting for a change under way (onRotate listeners read this); undefined before its first issue. */
  current(service: string): WorkloadCertificate | undefined {
    return this.entries.get(service)?.presented
  }

  /** A tls.SecureContext for `service` presenting its current cert, trusting the mesh CA; replaced on rotation. */
  async secureContext(service: string): Promise<tls.SecureContext> {
    return (await this.settled(service)).context!
  }

  /** The HTTPS ingress's server certificate (localhost, 127.0.0.1, ::1), signed by the mesh CA. */
  serverContext(): Promise<tls.SecureContext> {
    return this.secureContext(INGRESS_IDENTITY)
  }

  /** Called after `service`'s certificate was replaced (rotation or `mesh certs rotate` or a cert fault), and once first issued. */
  onRotate(listener: (service: string) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Replaces the genuine certificate of `service` now (of every service issued so far without one). */
  async rotate(service?: string): Promise<void> {
    const services = service === undefined ? [...this.entries.keys()] : [service]
    await Promise.all(services.map((s) => this.enqueue(this.entry(s), (e) => this.issue(e))))
  }

  /**
   * Makes `service` present a bad certificate (`fault`), or its genuine one again (undefined).
   * Resolves once the certificate is in place and onRotate listeners have run.
   */
  async setFault(service: string, fault: CertFault | undefined): Promise<void> {
    const entry = this.entry(service)
    await this.enqueue(entry, async (e) => {
      if (e.fault === fault) return
      e.fault = fault
      this.present(e, fault ? await this.faulty(e, fault) : e.genuine!)
    })
  }

  /** What each service presents, by service name (the ingress's server certificate included once issued). */
  async list(): Promise<CertificateInfo[]> {
    const entries = [...this.entries.values()]
    await Promise.all(entries.map((e) => e.queue.catch(() => undefined)))
    return entries
      .filter((e) => e.presented)
      .sort((a, b) => a.service.localeCompare(b.service))
      .map((e) => {
        const c = e.presented!
        return {
          service: e.service,
          spiffeId: c.spiffeId,
          serial: c.serial,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          rotations: e.genuine?.rotations ?? 0,
          ...(e.fault ? {fault: e.fault} : {}),
          ...(e.nextRotationAt !== undefined ? {nextRotation: new Date(this.o.clock.wallAt(e.nextRotationAt)).toISOString()} : {}),
        }
      })
  }

  stop(): void {
    this.stopped = true
    for (const e of this.entries.values()) e.timer?.cancel()
  }

  /** The entry once the changes asked for so far are done; a failed one is an error only when there is nothing to present. */
  private async settled(service: string): Promise<Entry> {
    const entry = this.entry(service)
    await entry.queue.catch((error: unknown) => {
      if (!entry.presented) throw error
    })
    return entry
  }

  private entry(service: string): Entry {
    let entry = this.entries.get(service)
    if (!entry) {
      entry = {service, queue: Promise.resolve()}
      this.entries.set(service, entry)
      // The first issue failing is the waiting callers' error (certificate() rejects with it); the next ask tries again.
      const created = entry
      void this.enqueue(entry, (e) => this.issue(e)).catch(() => {
        if (!created.genuine && this.entries.get(service) === created) this.entries.delete(service)
      })
    }
    return entry
  }

  /** Runs `op` after every change asked for before it; a failed change does not block the next. */
  private enqueue(entry: Entry, op: (e: Entry) => Promise<void>): Promise<void> {
    const run = entry.queue.catch(() => undefined).then(() => op(entry))
    entry.queue = run
    return run
  }

  /** A new genuine certificate, presented at once unless a fault is on, and the next rotation at half its life. */
  private async issue(entry: Entry): Promise<void> {
    if (this.stopped && entry.genuine) return
    const now = new Date(this.o.clock.wallNow())
    const issued = await this.issueFor(entry.service, this.ca, now)
    const previous = entry.genuine
    entry.genuine = this.workload(entry.service, issued, previous ? previous.rotations + 1 : 0)
    this.schedule(entry, this.o.certTtlMs / 2)
    if (!entry.fault || !entry.presented) this.present(entry, entry.genuine)
  }

  private issueFor(service: string, ca: MeshCA, now: Date, as = service): Promise<IssuedCertificate> {
    const ttlMs = this.o.certTtlMs
    if (service === INGRESS_IDENTITY) {
      // Its SPIFFE ID too: the ingress presents this certificate as a caller under policy.tls ISTIO_MUTUAL.
      return ca.issue({uri: this.spiffeId(INGRESS_IDENTITY), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], ttlMs, now, commonName: 'localhost'})
    }
    return ca.issue({uri: this.spiffeId(as), ttlMs, now, commonName: as})
  }

  private async faulty(entry: Entry, fault: CertFault): Promise<WorkloadCertificate> {
    const wall = this.o.clock.wallNow()
    const rotations = entry.genuine?.rotations ?? 0
    switch (fault) {
      case 'expired': {
        // Issued so that its notAfter lies an hour back: every verifier calls it expired.
        const issued = await this.issueFor(entry.service, this.ca, new Date(wall - this.o.certTtlMs - EXPIRED_AGO_MS))
        return this.workload(entry.service, issued, rotations)
      }
      case 'untrusted': {
        this.foreignCa ??= MeshCA.create(this.trustDomain, new Date(wall))
        return this.workload(entry.service, await this.issueFor(entry.service, await this.foreignCa, new Date(wall)), rotations)
      }
      case 'wrong-identity': {
        const as = this.impersonated(entry.service)
        return this.workload(entry.service, await this.issueFor(entry.service, this.ca, new Date(wall), as), rotations)
      }
    }
  }

  /** Another service of the mesh (the first by name), so a wrong-identity fault reads as a real mix-up; a made-up one when there is none. */
  private impersonated(service: string): string {
    const others = [...this.entries.keys()].filter((s) => s !== service && s !== INGRESS_IDENTITY).sort()
    return others[0] ?? `not-${service}`
  }

  private workload(service: string, issued: IssuedCertificate, rotations: number): WorkloadCertificate {
    return {
      service,
      spiffeId: issued.uri ?? '',
      certPem: issued.certPem,
      keyPem: issued.keyPem,
      serial: issued.serial,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
      rotations,
    }
  }

  private present(entry: Entry, cert: WorkloadCertificate): void {
    entry.presented = cert
    // The mesh CA stays the trust anchor whatever is presented: a faulty service still verifies its peers.
    entry.context = tls.createSecureContext({cert: cert.certPem, key: cert.keyPem, ca: this.ca.certPem})
    for (const listener of this.listeners) {
      // One listener failing must not keep the others, or the rotation, from happening.
      try {
        listener(entry.service)
      } catch (error) {
        this.o.onError?.(entry.service, error as Error)
      }
    }
  }

  private schedule(entry: Entry, inMs: number): void {
    entry.nextRotationAt = this.o.clock.now() + inMs
    this.arm(entry)
  }

  /** Sets the timer for the next rotation, in steps a timer can hold: 45 days (half of a 90-day TTL) is longer than setTimeout's 24.8. */
  private arm(entry: Entry): void {
    entry.timer?.cancel()
    if (this.stopped || entry.nextRotationAt === undefined) return
    const left = entry.nextRotationAt - this.o.clock.now()
    if (left > MAX_TIMER_MS) {
      entry.timer = this.o.clock.setTimer(MAX_TIMER_MS, () => this.arm(entry))
      return
    }
    entry.timer = this.o.clock.setTimer(left, () => {
      void this.enqueue(entry, (e) => this.issue(e)).catch((error: Error) => {
        this.o.onError?.(entry.service, error)
        // The current certificate is still valid for half its life: try again well before it ends.
        this.schedule(entry, this.o.certTtlMs / 8)
      })
    })
  }
}
