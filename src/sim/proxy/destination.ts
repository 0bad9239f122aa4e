// Everything the data plane keeps for one destination service: its endpoints, the
// policy state that outlives a request (balancer, outlier detector, breaker, rate
// limiter, retry budget) and the stack built from its `policy:` block. In the
// one-pass design every caller's outbound side uses this same stack, so the
// callee's policies apply whoever calls.
import type {TcpTarget} from './tcp-proxy.js'
import type {CircuitBreakerConfig, PolicyConfig, ServiceConfig} from '../config/types.js'
import type {Endpoint, Registry} from './registry.js'
import type {Clock} from '../time/clock.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import type {Balancer} from './balance/balancer.js'
import {createBalancer} from './balance/create-balancer.js'
import {availableEndpoints} from './balance/panic.js'
import {EndpointSet} from './endpoint-set.js'
import type {Leaf} from './leaf.js'
import {activator, VersionGates} from './layers/activator.js'
import {authorization} from './layers/authorization.js'
import {balance} from './layers/balance.js'
import {circuitBreaker} from './layers/circuit-breaker.js'
import {fault, type FaultLayerDeps} from './layers/fault.js'
import {outcome} from './layers/outcome.js'
import {rateLimit} from './layers/rate-limit.js'
import {requestAuthentication} from './layers/request-authentication.js'
import type {RequestAuthenticators} from '../security/jwt/request-authenticators.js'
import type {ActivationHub} from '../scaling/activation.js'
import {ConcurrencyAccount} from '../scaling/concurrency-gate.js'
import {retry} from './layers/retry.js'
import {MIRROR_TIMEOUT_DEFAULT_MS, route} from './layers/route.js'
import {serverSpan} from './layers/server-span.js'
import {timeout} from './layers/timeout.js'
import {trace} from './layers/trace.js'
import {OutlierDetector, type OutlierEvent} from './outlier/outlier-detector.js'
import {CircuitBreaker} from './policy/circuit-breaker.js'
import {createRateLimiter, type KeyedRateLimiter} from './policy/rate-limit.js'
import {RetryBudget} from './policy/retry-budget.js'
import {type Service, stack} from './stack.js'
import type {TelemetrySink} from './telemetry-sink.js'

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
  /** Not a request count: the consumers a keyed rate limit keeps a limiter for (at most its maxConsumers). */
  rateLimitConsumers?: number
  /** Per scaled version: requests the activator let through and still running, and requests it holds. */
  activator?: Record<string, {inFlight: number; held: number}>
  /** Mirrored copies' own circuit breaker (while a mirror is set, or copies are under way): they never take the callers' slots. */
  mirrorBreaker?: {requests: number; pending: number; connections: number; retries: number}
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
  clock: Clock
  /** The bottom of the stack (leaf.ts): the data plane's reaches instances over the network. */
  leaf: Leaf
  sink: TelemetrySink
  seed: number
  onOutlierEvent?: (service: string, event: OutlierEvent) => void
  /** The jwtRules of every service and of the ingress (security/jwt/). */
  authn?: RequestAuthenticators
  /** Lambda's account pool, shared by every scaled version of the data plane (one made per destination when absent: tests). */
  account?: ConcurrencyAccount
  /** Where the activator tells the autoscaler a request is held (scaling/activation.ts). */
  activation?: ActivationHub
  /** The callee's server span ids: random unless given (mesh sim numbers them, so its trace files repeat). */
  spanIds?: () => string
}

/**
 * A change a deploy lays over mesh.yaml's policy while it runs (a canary's header route, a
 * mirror): applied to whatever policy `mesh apply` set last, so the two compose.
 */
export type PolicyOverlay = (base: PolicyConfig) => PolicyConfig

/** Whether two pieces of config are the same by value (as `mesh apply` decides "No changes"). */
const sameConfig = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

export class Destination {
  readonly endpoints: EndpointSet
  readonly name: string
  /** `tcp`: reached through TCP listeners (tcp-proxy.ts); its HTTP stack is never called. `grpc`: its instances speak h2c. */
  readonly protocol: 'http' | 'grpc' | 'tcp'
  /** mesh.yaml's service: `mesh apply` changes its versions' `scaling:` in place (read on each rebuild). */
  private readonly config: ServiceConfig
  /** The call path, outermost layer first (see stack.ts); rebuilt by `apply` and `overlay`. */
  private callPath!: Service
  /** mesh.yaml's policy, as the last `mesh apply` set it. */
  private base!: PolicyConfig
  private readonly overlays: PolicyOverlay[] = []
  /** The base with the overlays on top: what the stack enforces. */
  private effective!: PolicyConfig
  private balancer!: Balancer<Endpoint>
  private outlierDetector?: OutlierDetector
  private readonly breaker: CircuitBreaker
  /** Mirrored copies' own (same limits), as Envoy's shadow cluster: a copy never takes a real request's slot. */
  private readonly mirrorBreaker: CircuitBreaker
  // Kept across rebuilds while their config is unchanged: a `mesh apply` must not refill buckets or budgets.
  private limiter?: {config: PolicyConfig['rateLimit']; limiter: KeyedRateLimiter}
  private budget?: {config: NonNullable<PolicyConfig['retries']>['budget']; budget: RetryBudget}
  private readonly random: Random
  private readonly leaf: Service
  /** Instances in the endpoint set at the last change: those that leave are forgotten by the balancer. */
  private live = new Set<string>()
  private mirrorPath?: Service
  /** The activator's gates of the scaled versions (`scaling:`). */
  private readonly gates: VersionGates

  constructor(
    config: ServiceConfig,
    weights: Map<string, number>,
    private readonly deps: DestinationDeps,
  ) {
    this.name = config.name
    this.protocol = config.protocol ?? 'http'
    this.random = new SeededRandom(seedFrom(deps.seed, 'destination', config.name))
    this.leaf = deps.leaf(this.protocol === 'grpc' ? 'grpc' : 'http', () => this.effective.tls)
    this.endpoints = new EndpointSet(config.name, deps.registry, weights)
    this.breaker = new CircuitBreaker(config.policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    this.mirrorBreaker = new CircuitBreaker(config.policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    this.config = config
    this.gates = new VersionGates(config.name, this.endpoints, deps.account ?? new ConcurrencyAccount(), deps.clock)
    this.apply(config.policy)
    this.endpoints.onChange((list) => this.membershipChanged(list))
  }

  /** The call path, outermost layer first (see stack.ts). */
  get service(): Service {
    return this.callPath
  }

  /** The policy in force: mesh.yaml's, with any running deploy's overlays on top. */
  get policy(): Readonly<PolicyConfig> {
    return this.effective
  }

  /** The outlier detector, when `outlierDetection:` is set. */
  get outlier(): OutlierDetector | undefined {
    return this.outlierDetector
  }

  /**
   * mesh.yaml's policy block (at start and on `mesh apply`). Overlays stay on top of it;
   * state whose config did not change (rate limiter, retry budget, balancer, outlier
   * detector, breaker counts) is kept.
   */
  apply(policy: PolicyConfig): void {
    this.base = policy
    this.rebuild()
  }

  /** Lays `patch` over the policy until the returned undo is called (undo removes exactly this overlay; twice is harmless). */
  overlay(patch: PolicyOverlay): () => void {
    this.overlays.push(patch)
    this.rebuild()
    return () => {
      const i = this.overlays.indexOf(patch)
      if (i < 0) return
      this.overlays.splice(i, 1)
      this.rebuild()
    }
  }

  /** Builds the stack for the base policy with the overlays on top. */
  private rebuild(): void {
    const previous = this.effective as PolicyConfig | undefined
    const policy = this.overlays.reduce((p, patch) => patch(p), this.base)
    this.effective = policy
    const {clock, sink} = this.deps
    if (!previous || !sameConfig(previous.loadBalancer, policy.loadBalancer)) {
      this.balancer = createBalancer(policy.loadBalancer, {clock, random: this.random, key: (e) => e.instance})
    }
    if (policy.outlierDetection) {
      if (this.outlierDetector) this.outlierDetector.setConfig(policy.outlierDetection)
      else {
        this.outlierDetector = new OutlierDetector(policy.outlierDetection, clock, (e) => this.deps.onOutlierEvent?.(this.name, e))
        this.outlierDetector.setEndpoints(this.endpoints.all().map((e) => e.instance))
      }
    } else {
      this.outlierDetector?.close()
      this.outlierDetector = undefined
    }
    this.breaker.setConfig(policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    this.mirrorBreaker.setConfig(policy.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER)
    if (!policy.rateLimit) this.limiter = undefined
    else if (!this.limiter || !sameConfig(this.limiter.config, policy.rateLimit)) {
      this.limiter = {config: policy.rateLimit, limiter: createRateLimiter(policy.rateLimit, clock)}
    }
    if (!policy.retries) this.budget = undefined
    else if (!this.budget || !sameConfig(this.budget.config, policy.retries.budget)) {
      this.budget = {config: policy.retries.budget, budget: new RetryBudget(policy.retries.budget, clock)}
    }
    const balancer = () => this.balancer
    const outlier = () => this.outlierDetector
    const hashOn = () => this.effective.loadBalancer.hashOn
    this.gates.sync(this.config.versions)
    const gates = this.gates.size > 0 ? this.gates : undefined

    // Below the version choice: one attempt to one instance.
    const attempt = (breaker: CircuitBreaker) =>
      stack(this.leaf)
        .push(fault('callee', this.deps.faults)) // the callee's inbound side: the caller's retries and timeouts see it
        .push(serverSpan(sink, false, this.deps.spanIds)) // the callee's inbound side: one span per attempt
        .push(outcome(balancer, outlier)) // results feed outlier detection and latency-aware balancing
        .push(balance({service: this.name, endpoints: this.endpoints, balancer, outlier, hashOn})) // only endpoints not ejected (and, scaled, with a free slot)
        .push(gates ? activator(gates, this.deps.activation) : undefined) // scaled versions: a slot on an instance, or held, or 429 TH
        .push(circuitBreaker(this.name, breaker)) // per attempt: 503 UO at once past a limit
    this.mirrorPath = attempt(this.mirrorBreaker).service()

    const budget = this.budget?.budget
    const limiter = this.limiter?.limiter
    const authn = this.deps.authn
    const authenticator = authn?.forService(this.name, policy.requestAuthentication)
    this.callPath = attempt(this.breaker)
      .push(policy.retries?.perTryTimeoutMs ? timeout({service: this.name, timeoutMs: policy.retries.perTryTimeoutMs, which: 'per-try'}) : undefined) // each attempt its own deadline
      .push(policy.retries && budget ? retry(policy.retries, {budget, breaker: this.breaker, random: this.random}) : undefined) // above balance: a retry can pick another instance
      // overall deadline, retries included; a gRPC service's caller may set a sooner one (grpc-timeout)
      .push(policy.timeoutMs || this.protocol === 'grpc' ? timeout({service: this.name, timeoutMs: policy.timeoutMs ?? 0, which: 'overall', callerDeadline: this.protocol === 'grpc'}) : undefined)
      .push(
        route({
          service: this.name,
          endpoints: this.endpoints,
          rules: () => this.effective.routes,
          mirror: () => this.effective.mirror,
          random: this.random,
          mirrorService: () => this.mirrorPath,
          mirrorTimeoutMs: () => this.effective.timeoutMs ?? MIRROR_TIMEOUT_DEFAULT_MS,
        }),
      )
      .push(fault('caller', this.deps.faults)) // the caller's outbound side, before routing and retries (Envoy's fault filter)
      .push(limiter ? rateLimit(this.name, limiter) : undefined) // reject cheaply before any work
      .push(policy.authorization ? authorization(() => this.effective.authorization) : undefined) // a refused caller costs nothing further
      .push(authn && (authenticator || authn.ingress) ? requestAuthentication(() => authenticator, () => authn.ingress) : undefined) // before authorization, as Envoy's jwt_authn before RBAC
      .push(trace(sink)) // outermost: the client span covers everything below
      .service()
  }

  /**
   * The endpoint set changed: what was kept for instances that left goes with them (instance
   * names are never reused, so it would otherwise grow with every instance ever started),
   * as linkerd's balancer drops an endpoint's load when it is removed.
   */
  private membershipChanged(list: readonly Endpoint[]): void {
    const now = new Set<string>()
    for (const e of list) now.add(e.instance)
    for (const instance of this.live) if (!now.has(instance)) this.balancer.forget?.(instance)
    this.live = now
    this.outlierDetector?.setEndpoints(now)
    // A deploy adds its version to the service in place (no rebuild): its gate comes with its first instances.
    const scaled = this.gates.size > 0
    this.gates.sync(this.config.versions)
    if (scaled !== this.gates.size > 0) this.rebuild()
    this.gates.instancesChanged()
  }

  /** The activator's gates of the scaled versions: a call to a published address takes its slot there too. */
  get versionGates(): VersionGates {
    return this.gates
  }

  /** Requests the activator holds for `version` now. */
  held(version: string): number {
    return this.gates.held(version)
  }

  /** Starting `version`'s instances failed: the requests held for it are answered 503 with `reason` now. */
  startFailed(version: string, reason: string): void {
    this.gates.startFailed(version, reason)
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
      const outlier = this.outlierDetector
      const candidates = outlier ? availableEndpoints(all, (e) => !outlier.isEjected(e.instance)).candidates : all
      return this.balancer.pick(candidates, {exclude: tried})
    },
    opened: (endpoint) => {
      this.outlierDetector?.record(endpoint.instance, 'success')
      this.balancer.onStart?.(endpoint)
    },
    closed: (endpoint) => this.balancer.onEnd?.(endpoint, 0, true),
    refused: (endpoint) => this.outlierDetector?.record(endpoint.instance, 'local-failure'),
  }

  /** The breaker's and the balancer's counts now; `instances` is the data plane's to fill. */
  load(): Omit<DestinationLoad, 'instances'> {
    const {requests, pending, connections, retries} = this.breaker.snapshot()
    const balancer = this.balancer
    const keyed = this.limiter && (this.limiter.config?.key || this.limiter.config?.perSource) ? {rateLimitConsumers: this.limiter.limiter.size()} : {}
    const gates = this.gates.load()
    const mirrors = this.mirrorBreaker.snapshot()
    const scaled = {...(gates ? {activator: gates} : {}), ...(this.effective.mirror || mirrors.requests + mirrors.pending > 0 ? {mirrorBreaker: mirrors} : {})}
    if (!balancer.pending) return {breaker: {requests, pending, connections, retries}, ...keyed, ...scaled}
    const counts: Record<string, number> = {}
    for (const e of this.endpoints.all()) counts[e.instance] = balancer.pending(e.instance)
    return {breaker: {requests, pending, connections, retries}, balancer: counts, ...keyed, ...scaled}
  }

  /** How many instances the balancer and the outlier detector keep state for (the live ones only). */
  tracked(): {balancer: number; outlier: number} {
    return {balancer: this.balancer.tracked?.() ?? 0, outlier: this.outlierDetector?.tracked() ?? 0}
  }

  /** Whether the balancer is in panic mode right now (fewer than half the instances available). */
  panic(): boolean {
    const outlier = this.outlierDetector
    if (!outlier) return false
    return availableEndpoints(this.endpoints.all(), (e) => !outlier.isEjected(e.instance)).panic
  }

  close(): void {
    this.gates.close()
    this.outlierDetector?.close()
    this.endpoints.close()
    // Its key sets go with it (`mesh status` lists the live ones only).
    this.deps.authn?.forService(this.name, undefined)
  }
}
