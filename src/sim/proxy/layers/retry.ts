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
import type {Layer, MeshResponse} from '../stack.js'

export interface RetryDeps {
  budget: RetryBudget
  breaker?: CircuitBreaker
  random: Random
}

export const retry =
  (config: RetryConfig, deps: RetryDeps): Layer =>
  (inner) =>
    async function retry(req, ctx) {
      deps.budget.deposit()
      const idempotent = isIdempotent(req.method)
      let holdingRetry = false
      try {
        for (let attempt = 1; ; attempt++) {
          let response: MeshResponse | undefined
          let failure: ProxyError | undefined
          let outcome: Outcome
          try {
            // In place, not a copy per attempt: attempts are sequential, and the layers
            // below that need this attempt's number read it when the attempt starts.
            ctx.attempt = attempt
            response = await inner(req, ctx)
            outcome = {kind: 'response', status: response.status}
          } catch (error) {
            // Only upstream failures carry an outcome; a breaker overflow, the whole call's timeout or a client abort do not.
            if (!(error instanceof ProxyError) || !error.outcome) throw error
            failure = error
            outcome = error.outcome
          }
          if (holdingRetry) {
            deps.breaker?.releaseRetry()
            holdingRetry = false
          }
          ctx.decision.attempts = attempt
          const replayable = req.replayable && (idempotent || outcome.kind === 'connect-failure')
          const again =
            attempt <= config.attempts &&
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
          holdingRetry = deps.breaker !== undefined
          response?.body?.destroy()
          await ctx.clock.sleep(fullJitterBackoff(attempt, config.backoff, deps.random), ctx.signal)
        }
      } finally {
        if (holdingRetry) deps.breaker?.releaseRetry()
      }
    }
