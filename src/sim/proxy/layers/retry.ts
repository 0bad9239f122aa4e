// Retries above load balancing, so a retry can go to another instance. Only what can
// be replayed is retried: idempotent methods with a buffered (or no) body; anything
// may be retried after a connect failure, since nothing reached the service. Every
// retry must fit the retry budget (Linkerd) and the breaker's maxRetries (Envoy),
// so a failing service never gets a retry storm. Backoff: exponential, full jitter.
import type {RetryConfig} from '../../config/types.js'
import type {Random} from '../../time/random.js'
import {fullJitterBackoff} from '../policy/backoff.js'
import type {CircuitBreaker} from '../policy/circuit-breaker.js'
import {isIdempotent, isRetriable, type Outcome} from '../policy/retry-classify.js'
import type {RetryBudget} from '../policy/retry-budget.js'
import {ProxyError} from '../respond.js'
import type {CallContext, Layer, MeshRequest, MeshResponse} from '../stack.js'

export interface RetryDeps {
  budget: RetryBudget
  breaker?: CircuitBreaker
  random: Random
}

export const retry =
  (config: RetryConfig, deps: RetryDeps): Layer =>
  (inner) => {
    /** One attempt; `holdingRetry`: this attempt holds a slot of the breaker's maxRetries. */
    const attempt = (req: MeshRequest, ctx: CallContext, n: number, holdingRetry: boolean): Promise<MeshResponse> => {
      // In place, not a copy per attempt: attempts are sequential, and the layers below
      // that need this attempt's number read it when the attempt starts.
      ctx.attempt = n
      let pending: Promise<MeshResponse>
      try {
        pending = inner(req, ctx)
      } catch (error) {
        pending = Promise.reject(error)
      }
      // then(), not an async loop: the usual request (one attempt that succeeds) makes one promise here.
      return pending.then(
        (response) => decide(req, ctx, n, holdingRetry, response),
        (error) => {
          // Only upstream failures carry an outcome; a breaker overflow, the whole call's timeout or a client abort do not.
          if (error instanceof ProxyError && error.outcome) return decide(req, ctx, n, holdingRetry, undefined, error)
          if (holdingRetry) deps.breaker?.releaseRetry()
          throw error
        },
      )
    }

    const decide = (
      req: MeshRequest,
      ctx: CallContext,
      n: number,
      holdingRetry: boolean,
      response: MeshResponse | undefined,
      failure?: ProxyError,
    ): MeshResponse | Promise<MeshResponse> => {
      if (holdingRetry) deps.breaker?.releaseRetry()
      const outcome: Outcome = failure ? failure.outcome! : {kind: 'response', status: response!.status}
      ctx.decision.attempts = n
      const replayable = req.replayable && (isIdempotent(req.method) || outcome.kind === 'connect-failure')
      const again =
        n <= config.attempts &&
        replayable &&
        !ctx.signal.aborted &&
        isRetriable(outcome, config.on) &&
        deps.budget.withdraw() &&
        (deps.breaker?.tryAcquireRetry() ?? true)
      ctx.decision.retryBudgetLeft = deps.budget.remaining()
      if (!again) {
        if (failure) throw failure
        return response!
      }
      const holding = deps.breaker !== undefined
      response?.body?.destroy()
      // The next try goes elsewhere when it can (only a retried request needs the set).
      if (ctx.endpoint) (ctx.tried ??= new Set()).add(ctx.endpoint.instance)
      return ctx.clock.sleep(fullJitterBackoff(n, config.backoff, deps.random), ctx.signal).then(
        () => attempt(req, ctx, n + 1, holding),
        (error) => {
          if (holding) deps.breaker?.releaseRetry()
          throw error
        },
      )
    }

    return function retry(req, ctx) {
      deps.budget.deposit()
      return attempt(req, ctx, 1, false)
    }
  }
