// Envoy's circuit breaking: per-destination caps on what may be outstanding at once.
// It is a set of counters, not an open/closed state machine — a request over a cap
// is refused at once (503 UO), never queued, so an overloaded upstream fails fast.
//
//   tryAcquireX() ── false ──▶ caller answers 503 UO (overflows.X++)
//        │ true
//        ▼  ... work ...  ──▶ releaseX()
import type {CircuitBreakerConfig} from '../../config/types.js'

export interface CircuitBreakerSnapshot {
  limits: CircuitBreakerConfig
  /** Outstanding now. */
  requests: number
  pending: number
  retries: number
  connections: number
  /** How often each limit refused something since creation. */
  overflows: {requests: number; pending: number; retries: number; connections: number}
}

export class CircuitBreaker {
  private requests = 0
  private pending = 0
  private retries = 0
  private connections = 0
  private readonly overflows = {requests: 0, pending: 0, retries: 0, connections: 0}

  constructor(private config: CircuitBreakerConfig) {}

  /** New limits (mesh apply); outstanding counts are kept, so lowering a limit only refuses new work. */
  setConfig(config: CircuitBreakerConfig): void {
    this.config = config
  }

  /** A request may go out while fewer than maxRequests are outstanding. */
  tryAcquireRequest(): boolean {
    if (this.requests >= this.config.maxRequests) {
      this.overflows.requests++
      return false
    }
    this.requests++
    return true
  }

  releaseRequest(): void {
    if (this.requests > 0) this.requests--
  }

  /** A request may wait for a connection while fewer than maxPendingRequests wait. */
  tryAcquirePending(): boolean {
    if (this.pending >= this.config.maxPendingRequests) {
      this.overflows.pending++
      return false
    }
    this.pending++
    return true
  }

  releasePending(): void {
    if (this.pending > 0) this.pending--
  }

  /** A retry may go out while fewer than maxRetries retries are outstanding. */
  tryAcquireRetry(): boolean {
    if (this.retries >= this.config.maxRetries) {
      this.overflows.retries++
      return false
    }
    this.retries++
    return true
  }

  releaseRetry(): void {
    if (this.retries > 0) this.retries--
  }

  /** A new upstream connection may open while fewer than maxConnections are open. */
  tryAcquireConnection(): boolean {
    if (this.connections >= this.config.maxConnections) {
      this.overflows.connections++
      return false
    }
    this.connections++
    return true
  }

  releaseConnection(): void {
    if (this.connections > 0) this.connections--
  }

  snapshot(): CircuitBreakerSnapshot {
    return {
      limits: {...this.config},
      requests: this.requests,
      pending: this.pending,
      retries: this.retries,
      connections: this.connections,
      overflows: {...this.overflows},
    }
  }
}
