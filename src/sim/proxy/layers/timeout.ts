// A deadline on everything below. Pushed twice: above retry (the overall timeout,
// retries included) and below it (each try its own deadline). When it fires before
// the response headers, the work below is aborted and the caller gets 504 UT.
//
// The overall deadline also covers the body, as Envoy's route timeout does: a body
// still streaming when it fires is cut (the client sees a reset; the spans say UT).
// A per-try deadline ends at the response headers: past them nothing can be retried.
//
// The overall deadline cancels the whole request (ctx.canceller) rather than making a
// child AbortController: one controller per request is enough on the hot path.
// Each call's state, its place in the deadline queue and its reply are one object
// (TimedCall), not a dozen closures: this layer runs twice per request.
//
// A gRPC client's deadline (`grpc-timeout`) is the overall deadline when it is the
// sooner, as Envoy honours it: the mesh stops the call (retries included) and answers
// DEADLINE_EXCEEDED itself, rather than leaving the instance at work for a caller that
// has already given up. The header goes on to the instance unchanged.
import type {ResponseBody} from '../body.js'
import {Cancellation} from '../cancellation.js'
import {grpcTimeoutMs} from '../grpc.js'
import {timeoutError, type TimeoutSource} from '../respond.js'
import {Deadline, DeadlineQueue} from '../../time/deadline-queue.js'
import {type CallContext, dropResponse, forward, type Layer, type MeshRequest, type MeshResponse, type Reply, type Service} from '../stack.js'

export interface TimeoutConfig {
  service: string
  /** 0: none configured (an overall layer then applies only a caller's grpc-timeout). */
  timeoutMs: number
  which: 'overall' | 'per-try'
  /** Overall, on a gRPC service: a caller's sooner `grpc-timeout` is the deadline. Other services never look for it. */
  callerDeadline?: boolean
}

export const timeout =
  (config: TimeoutConfig): Layer =>
  (inner) => {
    // Every request of this layer waits the same time: one queue of deadlines, not a timer each.
    let deadlines: DeadlineQueue | undefined
    const configured = config.timeoutMs
    return function timeout(req, ctx, reply) {
      if (config.callerDeadline) {
        const header = req.headers['grpc-timeout']
        const callerMs = header === undefined ? undefined : grpcTimeoutMs(header)
        if (callerMs !== undefined && !(configured > 0 && configured <= callerMs)) {
          return new TimedCall(config, 'grpc-timeout', callerMs, ctx, reply).scheduleAlone(ctx.clock, callerMs).start(inner, req)
        }
        if (!(configured > 0)) return forward(inner, req, ctx, reply)
      }
      if (deadlines?.clock !== ctx.clock) deadlines = new DeadlineQueue(ctx.clock, configured)
      deadlines.schedule(new TimedCall(config, config.which, configured, ctx, reply)).start(inner, req)
    }
  }

/** One call under the deadline: its place in the queue, and the reply of the work below. */
class TimedCall extends Deadline implements Reply {
  private settled = false
  private streaming: ResponseBody | undefined = undefined
  /** Per try: this try's own cancellation under the request's, so only the try is cut. */
  private child: Cancellation | undefined = undefined
  private parent: Cancellation | undefined = undefined
  private onParentAbort: (() => void) | undefined = undefined

  constructor(
    private readonly config: TimeoutConfig,
    /** Which deadline this is: the policy's, or (overall) the caller's grpc-timeout. */
    private readonly source: TimeoutSource,
    private readonly ms: number,
    private readonly ctx: CallContext,
    private readonly reply: Reply,
  ) {
    super()
  }

  start(inner: Service, req: MeshRequest): void {
    if (this.config.which === 'per-try') {
      // The try's signal goes in the request's context while the try is under way (tries
      // follow one another), and the request's comes back when it settles.
      const parent = (this.parent = this.ctx.signal)
      const child = (this.child = new Cancellation())
      if (parent.aborted) child.abort(parent.reason)
      else parent.addEventListener('abort', (this.onParentAbort = () => child.abort(parent.reason)))
      this.ctx.signal = child.signal
    }
    forward(inner, req, this.ctx, this)
  }

  onDeadline(): void {
    const {config, ctx, source} = this
    if (this.streaming) {
      ctx.decision.timeoutFired = source
      return void this.streaming.destroy(timeoutError(config.service, source, this.ms))
    }
    if (this.settled) return
    this.settled = true
    const error = timeoutError(config.service, source, this.ms)
    ctx.decision.timeoutFired = source
    if (this.child) {
      this.endTry()
      this.child.abort(error)
    } else ctx.canceller.abort(error)
    // The caller gets its 504 now, whether or not the work below has stopped yet.
    this.reply.fail(error)
  }

  ok(response: MeshResponse): void {
    if (this.settled) return dropResponse(response)
    this.settled = true
    this.endTry()
    if (this.config.which === 'overall' && response.body) {
      this.streaming = response.body
      response.body.onDone(this)
    } else this.cancel()
    this.reply.ok(response)
  }

  /** The overall deadline covered the body until now. */
  bodyDone(): void {
    this.streaming = undefined
    this.cancel()
  }

  fail(error: unknown): void {
    if (this.settled) return
    this.settled = true
    this.cancel()
    this.endTry()
    this.reply.fail(error)
  }

  /** Per try: the request's signal goes back into the context, and stops forwarding to the try's. */
  private endTry(): void {
    const parent = this.parent
    if (!parent) return
    if (this.onParentAbort) parent.removeEventListener('abort', this.onParentAbort)
    this.ctx.signal = parent
  }
}
