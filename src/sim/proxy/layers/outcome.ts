// Records how each attempt went, for the policies that learn from it: outlier
// detection (ejections) and the latency-aware balancers. It decides nothing.
import type {Endpoint} from '../registry.js'
import type {Balancer} from '../balance/balancer.js'
import type {OutlierDetector} from '../outlier/outlier-detector.js'
import {outcomeStatus} from '../grpc.js'
import {outlierOutcome} from '../policy/retry-classify.js'
import {ProxyError} from '../respond.js'
import type {Clock} from '../../time/clock.js'
import type {CallContext, Layer, MeshResponse, Reply} from '../stack.js'

export const outcome =
  (balancer: () => Balancer<Endpoint>, outlier: () => OutlierDetector | undefined): Layer =>
  (inner) =>
    function outcome(req, ctx, reply) {
      const b = balancer()
      b.onStart?.(ctx.endpoint!)
      inner(req, ctx, new AttemptOutcome(reply, ctx, b, outlier()))
    }

class AttemptOutcome implements Reply {
  private readonly endpoint: Endpoint
  private readonly clock: Clock
  private readonly started: number

  constructor(
    private readonly next: Reply,
    ctx: CallContext,
    private readonly balancer: Balancer<Endpoint>,
    private readonly outlier: OutlierDetector | undefined,
  ) {
    this.endpoint = ctx.endpoint!
    this.clock = ctx.clock
    this.started = ctx.clock.now()
  }

  ok(response: MeshResponse): void {
    const status = outcomeStatus(response)
    this.balancer.onEnd?.(this.endpoint, this.clock.now() - this.started, status < 500)
    this.outlier?.record(this.endpoint.instance, outlierOutcome({kind: 'response', status}))
    this.next.ok(response)
  }

  fail(error: unknown): void {
    this.balancer.onEnd?.(this.endpoint, this.clock.now() - this.started, false)
    // A timeout or reset of this attempt counts against the instance; a client that went away does not.
    if (error instanceof ProxyError && error.outcome) this.outlier?.record(this.endpoint.instance, outlierOutcome(error.outcome))
    this.next.fail(error)
  }
}
