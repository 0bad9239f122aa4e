// Envoy's circuit breaking: per-destination caps on what may be outstanding at once.
// It is a set of counters, not an open/closed state machine — a request over a cap
// is refused at once (503 UO), never queued, so an overloaded upstream fails fast.
// As Envoy's ResourceManager, one ResourceLimit per kind of resource:
//
//   breaker.X.tryAcquire() ── false ──▶ caller answers 503 UO (X.overflows++)
//        │ true
//        ▼  ... work ...  ──▶ breaker.X.release()
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

/** One capped resource: how many are outstanding, and how often the cap refused one. */
export class ResourceLimit {
  private count = 0
  private refused = 0

  /** `max` may change at run time (mesh apply); what is outstanding is kept, so a lower cap only refuses new work. */
  constructor(public max: number) {}

  /** Takes one while fewer than `max` are outstanding. */
  tryAcquire(): boolean {
    if (this.count >= this.max) {
      this.refused++
      return false
    }
    this.count++
    return true
  }

  /** Gives one back; more releases than acquires never go below zero. */
  release(): void {
    if (this.count > 0) this.count--
  }

  get outstanding(): number {
    return this.count
  }

  get overflows(): number {
    return this.refused
  }
}

export class CircuitBreaker {
  /** A request may go out while fewer than maxRequests are outstanding. */
  readonly requests: ResourceLimit
  /** A request may wait for a connection while fewer than maxPendingRequests wait. */
  readonly pending: ResourceLimit
  /** A retry may go out while fewer than maxRetries retries are outstanding. */
  readonly retries: ResourceLimit
  /** A new upstream connection may open while fewer than maxConnections are open. */
  readonly connections: ResourceLimit

  constructor(private config: CircuitBreakerConfig) {
    this.requests = new ResourceLimit(config.maxRequests)
    this.pending = new ResourceLimit(config.maxPendingRequests)
    this.retries = new ResourceLimit(config.maxRetries)
    this.connections = new ResourceLimit(config.maxConnections)
  }

  /** New limits (mesh apply); outstanding counts are kept, so lowering a limit only refuses new work. */
  setConfig(config: CircuitBreakerConfig): void {
    this.config = config
    this.requests.max = config.maxRequests
    this.pending.max = config.maxPendingRequests
    this.retries.max = config.maxRetries
    this.connections.max = config.maxConnections
  }

  snapshot(): CircuitBreakerSnapshot {
    const {requests, pending, retries, connections} = this
    return {
      limits: {...this.config},
      requests: requests.outstanding,
      pending: pending.outstanding,
      retries: retries.outstanding,
      connections: connections.outstanding,
      overflows: {requests: requests.overflows, pending: pending.overflows, retries: retries.overflows, connections: connections.overflows},
    }
  }
}
