// Records how each attempt went, for the policies that learn from it: outlier
// detection (ejections) and the latency-aware balancers. It decides nothing.
import type {Endpoint} from '../../control/registry.js'
import type {Balancer} from '../balance/balancer.js'
import type {OutlierDetector} from '../outlier/outlier-detector.js'
import {outlierOutcome} from '../policy/retry-classify.js'
import {ProxyError} from '../respond.js'
import type {Layer} from '../stack.js'

export const outcome =
  (balancer: () => Balancer<Endpoint>, outlier: () => OutlierDetector | undefined): Layer =>
  (inner) =>
    function outcome(req, ctx) {
      const endpoint = ctx.endpoint!
      const b = balancer()
      const started = ctx.clock.now()
      b.onStart?.(endpoint)
      return inner(req, ctx).then(
        (response) => {
          b.onEnd?.(endpoint, ctx.clock.now() - started, response.status < 500)
          outlier()?.record(endpoint.instance, outlierOutcome({kind: 'response', status: response.status}))
          return response
        },
        (error) => {
          b.onEnd?.(endpoint, ctx.clock.now() - started, false)
          // A timeout or reset of this attempt counts against the instance; a client that went away does not.
          if (error instanceof ProxyError && error.outcome) outlier()?.record(endpoint.instance, outlierOutcome(error.outcome))
          throw error
        },
      )
    }
