// Everything the data plane keeps for one destination service: its endpoints, the
// policy state that outlives a request (balancer, outlier detector, breaker, rate
// limiter, retry budget) and the stack built from its `policy:` block. In the
// one-pass design every caller's outbound side uses this same stack, so the
// callee's policies apply whoever calls.
import type {TcpTarget} from './tcp-proxy.js'
import type {Agent} from 'undici'
import type {CircuitBreakerConfig, PolicyConfig, ServiceConfig} from '../config/types.js'
import type {Endpoint, Registry} from './registry.js'
import type {Clock} from '../time/clock.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import {type Balancer, createBalancer} from './balance/balancer.js'
import {availableEndpoints} from './balance/panic.js'
import {EndpointSet} from './endpoint-set.js'
import {authorization} from './layers/authorization.js'
import {balance} from './layers/balance.js'
import {circuitBreaker} from './layers/circuit-breaker.js'
import {fault, type FaultLayerDeps} from './layers/fault.js'
import {outcome} from './layers/outcome.js'
import {rateLimit} from './layers/rate-limit.js'
import {retry} from './layers/retry.js'
import {route} from './layers/route.js'
import {serverSpan} from './layers/server-span.js'
import {timeout} from './layers/timeout.js'
import {trace} from './layers/trace.js'
import {OutlierDetector, type OutlierEvent} from './outlier/outlier-detector.js'
import {CircuitBreaker} from './policy/circuit-breaker.js'
import {createRateLimiter} from './policy/rate-limit.js'
import {RetryBudget} from './policy/retry-budget.js'
import {type Service, stack} from './stack.js'
import type {TelemetrySink} from './telemetry-sink.js'
import {upstream} from './upstream.js'
import {H2Sessions, h2Upstream} from './h2-upstream.js'

/**
 * What one destination's requests hold right now, for finding a leak: each count is 0 when
 * no request to it is under way (`mesh status --json`).
 */
export interface DestinationLoad {
  /** The circuit breaker's outstanding counts (policy.circuitBreaker limits them). */
  breaker: {requests: number; pending: number; connections: number; retries: number}
  /** Requests under way to each instance (a draining instance stops at 0). */
  instances: Record<string, number>
  /** Attempts in flight per instance as the balancer counts them (least-request, ewma only). */
  balancer?: Record<string, number>
}

/**
 * Envoy's defaults, used when `circuitBreaker:` is not set — except maxRetries:
 * Envoy's 3 concurrent retries fails requests under any real concurrency, so (as
 * Istio does) it is effectively unbounded and the retry budget limits retries.
 */
export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerConfig = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 1024,
}

export interface DestinationDeps {
  registry: Registry
  faults: FaultLayerDeps
  inflight: Map<string, number>
  clock: Clock
  agent: Agent
  /** For instances that speak HTTP/2 cleartext (`protocol: grpc`). */
  h2: H2Sessions
  sink: TelemetrySink
  seed: number
  onOutlierEvent?: (service: string, event: OutlierEvent) => void
}

export class Destination {
  readonly endpoints: EndpointSet
  readonly name: string
  /** `tcp`: reached through TCP listeners (tcp-proxy.ts); its HTTP stack is never called. `grpc`: its instances speak h2c. */
  readonly protocol: 'http' | 'grpc' | 'tcp'
  /** The call path, outermost layer first (see stack.ts). */
  service!: Service
  policy!: PolicyConfig
  private balancer!: Balancer<Endpoint>
  outlier?: OutlierDetector
  readonly breaker: CircuitBreaker
  private readonly random: Random
  private mirrorPath?: Service

  constructor(
    config: ServiceConfig,
    weights: Map<string, number>,
    private readonly deps: DestinationDeps,
  ) {
    this.name = config.name
    this.protocol = config.protocol ?? 'http'
    this.random = new SeededRandom(seedFrom(deps.seed, 'destination', config.name))
    this.endpoints = new EndpointSet(config.name, deps.registry, weights)
    this.breaker = new CircuitBreaker(config.policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    this.endpoints.onChange((list) => this.outlier?.setEndpoints(list.map((e) => e.instance)))
    this.apply(config.policy)
  }

  /** (Re)builds the stack from a policy block; state that still fits the new policy is kept. */
  apply(policy: PolicyConfig): void {
    const previous = this.policy
    this.policy = policy
    const {clock, sink} = this.deps
    const lbChanged = !previous || JSON.stringify(previous.loadBalancer) !== JSON.stringify(policy.loadBalancer)
    if (lbChanged) this.balancer = createBalancer(policy.loadBalancer, {clock, random: this.random, key: (e) => e.instance})
    if (policy.outlierDetection) {
      if (this.outlier) this.outlier.setConfig(policy.outlierDetection)
      else {
        this.outlier = new OutlierDetector(policy.outlierDetection, clock, (e) => this.deps.onOutlierEvent?.(this.name, e))
        this.outlier.setEndpoints(this.endpoints.all().map((e) => e.instance))
      }
    } else {
      this.outlier?.close()
      this.outlier = undefined
    }
    this.breaker.setConfig(policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    const breakerConfig = () => this.policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER
    const limiter = policy.rateLimit && createRateLimiter(policy.rateLimit, clock)
    const budget = policy.retries && new RetryBudget(policy.retries.budget, clock)
    const balancer = () => this.balancer
    const outlier = () => this.outlier
    const hashOn = () => this.policy.loadBalancer.hashOn

    // Below the version choice: one attempt to one instance.
    const attempt = () =>
      stack(this.protocol === 'grpc' ? h2Upstream(this.deps.h2, this.deps.inflight) : upstream(this.deps.agent, this.deps.inflight))
        .push(fault('callee', this.deps.faults)) // the callee's inbound side: the caller's retries and timeouts see it
        .push(serverSpan(sink)) // the callee's inbound side: one span per attempt
        .push(outcome(balancer, outlier)) // results feed outlier detection and latency-aware balancing
        .push(balance({service: this.name, endpoints: this.endpoints, balancer, outlier, hashOn})) // only endpoints not ejected
        .push(circuitBreaker(this.name, this.breaker, breakerConfig)) // per attempt: 503 UO at once past a limit
    this.mirrorPath = attempt().service()

    this.service = attempt()
      .push(policy.retries?.perTryTimeoutMs ? timeout({service: this.name, timeoutMs: policy.retries.perTryTimeoutMs, which: 'per-try'}) : undefined) // each attempt its own deadline
      .push(policy.retries && budget ? retry(policy.retries, {budget, breaker: this.breaker, random: this.random}) : undefined) // above balance: a retry can pick another instance
      // overall deadline, retries included; a gRPC service's caller may set a sooner one (grpc-timeout)
      .push(policy.timeoutMs || this.protocol === 'grpc' ? timeout({service: this.name, timeoutMs: policy.timeoutMs ?? 0, which: 'overall', callerDeadline: this.protocol === 'grpc'}) : undefined)
      .push(
        route({
          service: this.name,
          endpoints: this.endpoints,
          rules: () => this.policy.routes,
          mirror: () => this.policy.mirror,
          random: this.random,
          mirrorService: () => this.mirrorPath,
        }),
      )
      .push(fault('caller', this.deps.faults)) // the caller's outbound side, before routing and retries (Envoy's fault filter)
      .push(limiter ? rateLimit(this.name, limiter, policy.rateLimit!.perSource) : undefined) // reject cheaply before any work
      .push(policy.authorization ? authorization(() => this.policy.authorization) : undefined) // a refused caller costs nothing further
      .push(trace(sink)) // outermost: the client span covers everything below
      .service()
  }

  /**
   * Where a `protocol: tcp` service's connections go: the version by weight, then the balancer
   * over its instances not ejected; least-request counts open connections (least
   * connections), and the breaker's maxConnections caps how many are open. Outlier detection
   * counts a refused connect as a gateway error and an accepted one as a success, as
   * Envoy's does for TCP.
   */
  readonly connections: TcpTarget = {
    admit: () => this.breaker.connections.tryAcquire(),
    release: () => this.breaker.connections.release(),
    pick: (tried) => {
      const version = this.endpoints.pickVersion()
      if (version === undefined) return undefined
      const all = this.endpoints.ofVersion(version)
      const outlier = this.outlier
      const candidates = outlier ? availableEndpoints(all, (e) => !outlier.isEjected(e.instance)).candidates : all
      return this.balancer.pick(candidates, {exclude: tried})
    },
    opened: (endpoint) => {
      this.outlier?.record(endpoint.instance, 'success')
      this.balancer.onStart?.(endpoint)
    },
    closed: (endpoint) => this.balancer.onEnd?.(endpoint, 0, true),
    refused: (endpoint) => this.outlier?.record(endpoint.instance, 'local-failure'),
  }

  /** The breaker's and the balancer's counts now; `instances` is the data plane's to fill. */
  load(): Omit<DestinationLoad, 'instances'> {
    const {requests, pending, connections, retries} = this.breaker.snapshot()
    const balancer = this.balancer
    if (!balancer.pending) return {breaker: {requests, pending, connections, retries}}
    const counts: Record<string, number> = {}
    for (const e of this.endpoints.all()) counts[e.instance] = balancer.pending(e.instance)
    return {breaker: {requests, pending, connections, retries}, balancer: counts}
  }

  /** Whether the balancer is in panic mode right now (fewer than half the instances available). */
  panic(): boolean {
    const outlier = this.outlier
    if (!outlier) return false
    return availableEndpoints(this.endpoints.all(), (e) => !outlier.isEjected(e.instance)).panic
  }

  close(): void {
    this.outlier?.close()
    this.endpoints.close()
  }
}
