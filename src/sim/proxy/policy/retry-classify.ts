// What an attempt's outcome means to the retry layer and to outlier detection.
// `retry_on` values keep Envoy's meanings, so an Istio user's config reads the same.
import type {GrpcRetryOn, RetryOn} from '../../config/types.js'
import type {OutlierOutcome} from '../outlier/outlier-detector.js'
import {GRPC_RETRY_ON} from '../../config/retry-semantics.js'

export type Outcome =
  /** `status`: the HTTP status, or a gRPC status's HTTP equivalent (grpc.ts); `grpcStatus`: a gRPC call's. */
  | {kind: 'response'; status: number; grpcStatus?: number}
  | {kind: 'connect-failure'}
  | {kind: 'reset'}
  /** The per-try timeout fired; Envoy treats it as a reset of that attempt. */
  | {kind: 'timeout'}

/**
 * Envoy's retry_on:
 * - `5xx`: any 5xx response, or no response at all (connect failure, reset, per-try timeout)
 * - `gateway-error`: 502, 503, 504, or no response at all (Envoy's router retries resets for it too)
 * - `reset`: no response at all (connect failure, reset, per-try timeout)
 * - `connect-failure`: the connection could not be made
 * - `retriable-status-codes` or a bare number: a response with one of the numbers listed in `on`
 * - `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`: a gRPC
 *   call answered with that status (in its headers: an error before any message)
 */
export function isRetriable(outcome: Outcome, on: readonly RetryOn[]): boolean {
  for (let i = 0; i < on.length; i++) {
    const rule = on[i]
    if (typeof rule === 'number') {
      if (outcome.kind === 'response' && outcome.status === rule) return true
      continue
    }
    switch (rule) {
      case '5xx':
        if (outcome.kind !== 'response' || outcome.status >= 500) return true
        break
      case 'gateway-error':
        if (outcome.kind !== 'response' || isGatewayStatus(outcome.status)) return true
        break
      case 'reset':
        if (outcome.kind !== 'response') return true
        break
      case 'connect-failure':
        if (outcome.kind === 'connect-failure') return true
        break
      case 'retriable-status-codes':
        // The codes themselves are the numbers in `on`, matched above.
        break
      default:
        if (outcome.kind === 'response' && outcome.grpcStatus !== undefined && GRPC_RETRY_ON[rule] === outcome.grpcStatus) return true
    }
  }
  return false
}

/**
 * A gRPC call answered with a status `on` names by its gRPC name: the user asked for it by
 * name, so it is retried although every gRPC call is a POST (as Istio retries them).
 */
export function isNamedGrpcRetry(outcome: Outcome, on: readonly RetryOn[]): boolean {
  if (outcome.kind !== 'response' || outcome.grpcStatus === undefined) return false
  for (const rule of on) if (typeof rule === 'string' && GRPC_RETRY_ON[rule as GrpcRetryOn] === outcome.grpcStatus) return true
  return false
}

export function isGatewayStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504
}

/** How outlier detection counts the outcome (see OutlierDetector.record). */
export function outlierOutcome(outcome: Outcome): OutlierOutcome {
  if (outcome.kind !== 'response') return 'local-failure'
  if (isGatewayStatus(outcome.status)) return 'gateway-error'
  return outcome.status >= 500 ? '5xx' : 'success'
}
