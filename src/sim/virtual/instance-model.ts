// A simulated instance in virtual time, and the leaf that hands an attempt to it. It
// behaves as model/simulated-service.ts does behind a real sidecar — the same dice in the
// same order (one uniform per declared call, the latency, the error), a slot of its
// concurrency, the downstream calls (sequential stops at the first failure; parallel waits
// for all), then its own latency, then its answer — but its calls go straight into the
// callee's Destination stack (the data plane's own, built by the same factory) and its
// sleeps are events on the SimClock.
//
//   leaf(attempt) ─▶ instance.handle ─▶ Station slot ─▶ calls ─▶ Destination(callee).service ─▶ … ─▶ leaf
//                                                     └─▶ latency (event) ─▶ reply.ok(status)
import type {SimulateConfig, SimulatedCall} from '../config/types.js'
import {latencyModel, type LatencyModel} from '../model/latency-model.js'
import {ResponseBody} from '../proxy/body.js'
import {Cancellation} from '../proxy/cancellation.js'
import type {Leaf} from '../proxy/leaf.js'
import type {Endpoint} from '../proxy/registry.js'
import {connectFailure, ProxyError, upstreamReset} from '../proxy/respond.js'
import type {CallContext, MeshRequest, MeshResponse, Peer, Reply, Service} from '../proxy/stack.js'
import {abortReason} from '../proxy/upstream.js'
import type {Random} from '../time/random.js'
import type {SimClock} from './event-queue.js'
import {Station, type StationJob} from './station.js'

/** How a call's instance reaches the stack of the service it calls (the caller's outbound side). */
export type CalleeOf = (service: string) => Service | undefined

/** What the run shares between its instances. */
export interface InstanceWorld {
  clock: SimClock
  callee: CalleeOf
  /** A span id for a call an instance makes (its client span); deterministic per run. */
  spanId(): string
}

/** One service's model, shared by its instances (the latency fit and the body are made once). */
export class ServiceModel {
  readonly latency: LatencyModel
  /** The body every answer carries (responseBytes of it); read only, so one buffer serves all. */
  readonly body: Buffer

  constructor(readonly config: SimulateConfig) {
    this.latency = latencyModel(config.latency)
    this.body = Buffer.alloc(config.responseBytes)
  }
}

const NO_HEADERS: [] = []

export class SimInstance {
  readonly station: Station
  private readonly peer: Peer
  readonly clock: SimClock
  /** Attempts in its station (queued or at work), linked through Work.prevLive/nextLive: no allocation per attempt. */
  private live: Work | undefined = undefined

  constructor(
    readonly endpoint: Endpoint,
    readonly model: ServiceModel,
    private readonly random: Random,
    private readonly world: InstanceWorld,
  ) {
    this.clock = world.clock
    this.station = new Station(world.clock, model.config.concurrency)
    this.peer = {identity: endpoint.service, authn: 'listener'}
  }

  /** One attempt from the leaf: its dice now, then a slot, its calls, its latency. */
  handle(req: MeshRequest, ctx: CallContext, reply: Reply): void {
    const signal = ctx.signal
    if (signal.aborted) return reply.fail(abortReason(signal))
    const {config, latency} = this.model
    // Draw order as simulated-service.ts: each declared call, then the latency, then the error.
    let calls: SimulatedCall[] | undefined
    for (const call of config.calls) if (this.random.next() < call.probability) (calls ??= []).push(call)
    const latencyMs = latency.sample(this.random)
    const fail = this.random.next() < config.errorRate
    const work = new Work(this, req, ctx, reply, signal, calls, latencyMs, fail)
    const head = this.live
    if (head) head.prevLive = work
    work.nextLive = head
    this.live = work
    work.enter()
  }

  /** @internal `work` left the station. */
  unlink(work: Work): void {
    const {prevLive, nextLive} = work
    if (prevLive) prevLive.nextLive = nextLive
    else if (this.live === work) this.live = nextLive
    if (nextLive) nextLive.prevLive = prevLive
    work.prevLive = work.nextLive = undefined
  }

  /**
   * A chaos kill: the process goes with all it was doing, as under SIGKILL. Each attempt it had
   * not answered fails as the real proxy fails it when the connection closes with no response
   * (502 UC, upstreamReset: retried and counted against the instance as a reset); the calls it
   * was making are cut, as a caller that went away (the callee's side: 499 DC).
   */
  kill(): void {
    const reset = upstreamReset(this.endpoint.instance, Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'}))
    const victims: Work[] = []
    // Out of the queue first, so a slot the others free starts none of them.
    for (let w = this.live; w; w = w.nextLive) {
      victims.push(w)
      w.dead = true
      if (w.queued) this.station.leave(w)
    }
    for (const w of victims) w.kill(reset)
    this.live = undefined
  }

  /** A call this instance makes on behalf of `work`, through the callee's stack. */
  call(work: Work, call: SimulatedCall, index: number): void {
    const service = this.world.callee(call.service)
    const reply = new CallReply(work, index)
    const cancellation = new Cancellation()
    work.callStarted(index, cancellation)
    if (!service) return reply.fail(new Error(`"${call.service}" is not a service of this mesh`))
    const e = this.endpoint
    const req: MeshRequest = {
      method: call.method,
      path: call.path,
      headers: {},
      body: null,
      replayable: true,
      destination: call.service,
      source: e.service,
      peer: this.peer,
      sourceVersion: e.version,
      sourceInstance: e.instance,
    }
    const ctx: CallContext = {
      clock: this.world.clock,
      signal: cancellation,
      canceller: cancellation,
      traceId: work.ctx.traceId,
      traceFlags: work.ctx.traceFlags,
      clientSpanId: this.world.spanId(),
      // The server span's id, as the instance read it from traceparent (00-<trace>-<span>-<flags>).
      parentSpanId: work.req.headers['traceparent']?.slice(36, 52) as string | undefined,
      decision: {},
      attempt: 1,
    }
    try {
      service(req, ctx, reply)
    } catch (error) {
      reply.fail(error)
    }
  }
}

/** One attempt at one instance: its place in the station, its calls, its latency. */
class Work implements StationJob {
  enteredAt = 0
  startedAt = 0
  queued = false
  private pending = 0
  private next = 0
  private failedCall: number | undefined = undefined
  private answered = false
  private finished = false
  private readonly onAbort: (() => void) | undefined
  /** Its instance was killed: nothing more of it runs. */
  dead = false
  private started = false
  prevLive: Work | undefined = undefined
  nextLive: Work | undefined = undefined
  /** The calls under way, by index (a kill cuts them). */
  private callsUnderWay: Array<Cancellation | undefined> | undefined = undefined

  constructor(
    private readonly instance: SimInstance,
    readonly req: MeshRequest,
    readonly ctx: CallContext,
    private readonly reply: Reply,
    private readonly signal: Cancellation,
    private readonly calls: SimulatedCall[] | undefined,
    private readonly latencyMs: number,
    private readonly fail: boolean,
  ) {
    this.onAbort = () => this.aborted()
    signal.addEventListener('abort', this.onAbort)
  }

  enter(): void {
    this.instance.station.enter(this)
  }

  start(): void {
    this.started = true
    const calls = this.calls
    if (!calls) return this.work()
    if (this.instance.model.config.callMode === 'parallel') {
      this.pending = calls.length
      for (let i = 0; i < calls.length; i++) this.instance.call(this, calls[i], i)
    } else {
      this.pending = 1
      this.instance.call(this, calls[0], 0)
    }
  }

  callStarted(index: number, cancellation: Cancellation): void {
    ;(this.callsUnderWay ??= [])[index] = cancellation
  }

  /** A call came back; `failed`: no answer, or 5xx. */
  callDone(index: number, failed: boolean): void {
    if (this.dead) return
    this.callsUnderWay![index] = undefined
    if (failed && this.failedCall === undefined) this.failedCall = index
    if (--this.pending > 0) return
    const calls = this.calls!
    if (this.instance.model.config.callMode === 'sequential' && !failed && ++this.next < calls.length) {
      this.pending = 1
      return this.instance.call(this, calls[this.next], this.next)
    }
    // Fail fast: a dependency's failure is the answer, without this instance's own latency.
    if (this.failedCall !== undefined) return this.finish(this.instance.model.config.callErrorStatus ?? 500)
    this.work()
  }

  private work(): void {
    const clock = this.instance.clock
    if (this.latencyMs > 0) clock.setTimer(this.latencyMs, () => this.finish(this.fail ? this.instance.model.config.errorStatus : 200))
    else this.finish(this.fail ? this.instance.model.config.errorStatus : 200)
  }

  private finish(status: number): void {
    if (this.dead) return
    this.finished = true
    this.instance.station.done(this)
    this.instance.unlink(this)
    if (this.answered) return
    this.answered = true
    this.signal.removeEventListener('abort', this.onAbort!)
    const model = this.instance.model
    const response: MeshResponse = {
      status,
      headers: NO_HEADERS,
      body: model.body.length > 0 ? ResponseBody.of(model.body) : ResponseBody.of(),
      endpoint: this.instance.endpoint,
    }
    this.reply.ok(response)
  }

  /** The caller gave up: a queued attempt leaves the queue; one at work is served to the end (as a real server), unheard. */
  private aborted(): void {
    if (this.answered) return
    this.answered = true
    if (!this.finished && this.instance.station.leave(this)) this.instance.unlink(this)
    this.reply.fail(abortReason(this.signal))
  }

  /** @internal Its instance was killed (SimInstance.kill, which took it out of the queue and the list). */
  kill(reset: ProxyError): void {
    if (this.started && !this.finished) {
      this.finished = true
      this.instance.station.done(this)
    }
    for (const c of this.callsUnderWay ?? []) c?.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    if (this.answered) return
    this.answered = true
    this.signal.removeEventListener('abort', this.onAbort!)
    this.reply.fail(reset)
  }
}

class CallReply implements Reply {
  constructor(
    private readonly work: Work,
    private readonly index: number,
  ) {}

  ok(response: MeshResponse): void {
    // Read to the end (and so closed: the spans and the timeouts above wait for it).
    response.body?.discard()
    this.work.callDone(this.index, response.status >= 500)
  }

  fail(_error: unknown): void {
    this.work.callDone(this.index, true)
  }
}

/**
 * The bottom of every stack in the simulation: the attempt goes to the chosen endpoint's
 * instance model. An endpoint with no instance (it left the run) refuses the connection,
 * as a stopped process's port does.
 */
export function virtualLeaf(instances: ReadonlyMap<string, SimInstance>): Leaf {
  return () =>
    function virtualLeaf(req, ctx, reply) {
      const endpoint = ctx.endpoint!
      const instance = instances.get(endpoint.instance)
      if (!instance) return reply.fail(connectFailure(endpoint.instance, endpoint.origin, Object.assign(new Error('no such instance'), {code: 'ECONNREFUSED'})))
      instance.handle(req, ctx, reply)
    }
}
