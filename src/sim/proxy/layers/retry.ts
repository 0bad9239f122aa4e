// Retries above load balancing, so a retry can go to another instance. Only what can
// be replayed is retried: idempotent methods with a buffered (or no) body; anything
// may be retried after a connect failure, since nothing reached the service. Every
// retry must fit the retry budget (Linkerd) and the breaker's maxRetries (Envoy),
// so a failing service never gets a retry storm. Backoff: exponential, full jitter.
import type {RetryConfig} from '../../config/types.js'
import type {Random} from '../../time/random.js'
import {fullJitterBackoff} from '../policy/backoff.js'
import type {CircuitBreaker} from '../policy/circuit-breaker.js'
import {outcomeStatus} from '../grpc.js'
import {isNamedGrpcRetry, isRetriable, type Outcome} from '../policy/retry-classify.js'
import {isIdempotent} from '../../config/retry-semantics.js'
import type {RetryBudget} from '../policy/retry-budget.js'
import {ProxyError} from '../respond.js'
import {type CallContext, dropResponse, forward, type Layer, type MeshRequest, type MeshResponse, type Reply, type Service} from '../stack.js'

export interface RetryDeps {
  budget: RetryBudget
  breaker?: CircuitBreaker
  random: Random
}

export const retry =
  (config: RetryConfig, deps: RetryDeps): Layer =>
  (inner) =>
    function retry(req, ctx, reply) {
      deps.budget.deposit()
      new Retrying(config, deps, inner, req, ctx, reply).attempt(1, false)
    }

/** One request's tries: the reply of each attempt, deciding whether another follows. */
class Retrying implements Reply {
  private n = 1
  /** This attempt holds a slot of the breaker's maxRetries. */
  private holdingRetry = false

  constructor(
    private readonly config: RetryConfig,
    private readonly deps: RetryDeps,
    private readonly inner: Service,
    private readonly req: MeshRequest,
    private readonly ctx: CallContext,
    private readonly next: Reply,
  ) {}

  attempt(n: number, holdingRetry: boolean): void {
    this.n = n
    this.holdingRetry = holdingRetry
    // In place, not a copy per attempt: attempts are sequential, and the layers below
    // that need this attempt's number read it when the attempt starts.
    this.ctx.attempt = n
    forward(this.inner, this.req, this.ctx, this)
  }

  ok(response: MeshResponse): void {
    this.decide(response, undefined)
  }

  fail(error: unknown): void {
    // Only upstream failures carry an outcome; a breaker overflow, the whole call's timeout or a client abort do not.
    if (error instanceof ProxyError && error.outcome) return this.decide(undefined, error)
    if (this.holdingRetry) this.deps.breaker?.retries.release()
    this.next.fail(error)
  }

  private decide(response: MeshResponse | undefined, failure: ProxyError | undefined): void {
    const {config, deps, ctx, req, n} = this
    if (this.holdingRetry) deps.breaker?.retries.release()
    const outcome: Outcome = failure ? failure.outcome! : {kind: 'response', status: outcomeStatus(response!), grpcStatus: response!.grpcStatus}
    ctx.decision.attempts = n
    const replayable = req.replayable && (isIdempotent(req.method) || outcome.kind === 'connect-failure' || isNamedGrpcRetry(outcome, config.on))
    const again =
      n <= config.attempts &&
      replayable &&
      !ctx.signal.aborted &&
      isRetriable(outcome, config.on) &&
      deps.budget.withdraw() &&
      (deps.breaker?.retries.tryAcquire() ?? true)
    ctx.decision.retryBudgetLeft = deps.budget.remaining()
    if (!again) return failure ? this.next.fail(failure) : this.next.ok(response!)
    const holding = deps.breaker !== undefined
    if (response) dropResponse(response)
    // The next try goes elsewhere when it can (only a retried request needs the set).
    if (ctx.endpoint) (ctx.tried ??= new Set()).add(ctx.endpoint.instance)
    ctx.clock.sleep(fullJitterBackoff(n, config.backoff, deps.random), ctx.signal).then(
      () => this.attempt(n + 1, holding),
      (error) => {
        if (holding) deps.breaker?.retries.release()
        this.next.fail(error)
      },
    )
  }
}
