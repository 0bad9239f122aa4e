// A fault: an injected failure with a target, a kind, selectors that choose which
// requests it hits, and a lifetime. Per-request kinds act in the data path (the
// fault layer); process kinds (kill, pause) act through the supervisor.
import {GRPC_STATUS_NAMES} from '../proxy/grpc.js'

/** What `mesh inject-fault SERVICE --cert KIND` makes a service present (workload-identity.ts makes them). */
export const CERT_FAULTS = ['expired', 'untrusted', 'wrong-identity'] as const
export type CertFault = (typeof CERT_FAULTS)[number]

/** `cert`: the service's instances present a bad certificate (workload-identity.ts) until the fault ends. */
export type FaultKind = 'delay' | 'abort' | 'reset' | 'partition' | 'bandwidth' | 'slow-close' | 'kill' | 'pause' | 'jwks-unavailable' | 'cert'

/** Where a per-request fault acts: the callee's inbound side (default; the caller's retries and timeouts see it) or the caller's outbound side. */
export type FaultSide = 'callee' | 'caller'

export interface FaultSpec {
  service: string
  version?: string
  kind: FaultKind
  /** delay: fixed part; slow-close: how long the end of the response is held. */
  delayMs?: number
  /** delay: ± uniform jitter. */
  jitterMs?: number
  /** abort: the HTTP status answered. */
  status?: number
  /** abort with a gRPC status (`abort: UNAVAILABLE`): what a gRPC call gets; `status` is its HTTP equivalent for the rest. */
  grpcStatus?: number
  /** reset: pass this many response bytes, then reset (mid-response). */
  afterBytes?: number
  /** partition: requests hang until the caller's timeout instead of being refused. */
  blackhole?: boolean
  /** bandwidth: response bytes per second. */
  bytesPerSecond?: number
  /** kill / pause: how many instances (default 1). */
  count?: number
  /** pause: SIGSTOP for this long, then SIGCONT. */
  pauseMs?: number
  /** cert: which bad certificate the service presents. */
  cert?: CertFault
  /** 0..100 of matching requests (default 100). */
  percent?: number
  /** Hit only the first N matching requests, then pass (a client's retries can be tested). */
  first?: number
  /** Only requests from this source service (one edge). */
  from?: string
  header?: {name: string; value: string}
  pathPrefix?: string
  at?: FaultSide
  /** Removed by itself after this long. */
  durationMs?: number
  /** Same seed, same requests hit in a rerun. */
  seed?: number
}

export interface FaultInfo extends FaultSpec {
  id: string
  /** Matching requests seen, and how many the fault hit. */
  seen: number
  hits: number
  createdAt: string
  expiresAt?: string
  /** For kill/pause: the instances it acted on. */
  instances?: string[]
}

export const PER_REQUEST_KINDS: readonly FaultKind[] = ['delay', 'abort', 'reset', 'partition', 'bandwidth', 'slow-close']

/**
 * The selector a fault on a `protocol: tcp` service could never match: a connection has no
 * path or headers (tcp-proxy.ts). Checked where faults are made: the CLI and mesh.yaml.
 */
export function requestOnlySelector(spec: FaultSpec): 'path' | 'header' | undefined {
  return spec.pathPrefix !== undefined ? 'path' : spec.header ? 'header' : undefined
}

/** The faults a call met, each once: a fault hit on every try reads `abort 503 (f1) × 3`. */
export function summariseFaults(hits: readonly string[]): string {
  const counts = new Map<string, number>()
  for (const h of hits) counts.set(h, (counts.get(h) ?? 0) + 1)
  return [...counts].map(([h, n]) => (n > 1 ? `${h} × ${n}` : h)).join(', ')
}

/** One line a person reads: `delay 300ms ±50ms`, `abort 503`, `reset after 100 bytes`. */
export function describeFault(f: FaultSpec): string {
  switch (f.kind) {
    case 'delay':
      return `delay ${f.delayMs ?? 0}ms${f.jitterMs ? ` ±${f.jitterMs}ms` : ''}`
    case 'abort':
      return f.grpcStatus !== undefined ? `abort ${GRPC_STATUS_NAMES[f.grpcStatus]}` : `abort ${f.status ?? 503}`
    case 'reset':
      return f.afterBytes !== undefined ? `reset after ${f.afterBytes} bytes` : 'reset'
    case 'partition':
      return f.blackhole ? 'partition (blackhole)' : 'partition (refused)'
    case 'bandwidth':
      return `bandwidth ${f.bytesPerSecond ?? 0} B/s`
    case 'slow-close':
      return `slow close ${f.delayMs ?? 1000}ms`
    case 'kill':
      return `kill ${f.count ?? 1}`
    case 'pause':
      return `pause ${f.count ?? 1} for ${f.pauseMs ?? 0}ms`
    case 'jwks-unavailable':
      return 'jwks unavailable'
    case 'cert':
      return `cert ${f.cert ?? 'expired'}`
  }
}

/** The bad certificate `service` presents: the latest of its cert faults still active, if any. */
export function activeCertFault(faults: readonly FaultInfo[], service: string): CertFault | undefined {
  return faults.filter((f) => f.kind === 'cert' && f.service === service).at(-1)?.cert
}
