// Knative's activator (and Lambda's concurrency limits) on the sidecar's data path, for
// services with `scaling:` only: a request to a scaled version takes a slot on one of its
// instances — never one already at containerConcurrency — or is held until one frees or a
// new instance is ready (a cold start, then `x-mesh-cold-start`), or is refused: 429 TH
// when the queue is full and the version cannot grow, 503 UH when the activator timeout
// passes or the cold start fails. The policy is scaling/concurrency-gate.ts.
//
// Where it sits: per attempt, just above balance (below the circuit breaker, whose slots a
// held request holds, as it would an Envoy upstream request). The gate admits a request
// only when some instance has a place free; the balancer then picks — with its own policy,
// outlier ejection and retry exclusions — among the free instances only (ctx.slot.free),
// and the slot of the one picked is claimed in the same tick (ctx.slot.claim), so no other
// request can take it in between. So the balancer stays the one place that chooses an
// instance, and the gate the one place that counts.
//
// A call to one instance's published address (its inbound listener) has no balancer: it
// passes `instanceActivator`, which holds it for a place on that instance — still busy, or
// still cold-starting — within the same activator timeout, as Knative's queue-proxy holds
// what reaches its pod. So no way into a scaled version skips its limits.
import {whenAborted} from '../../abort-signal.js'
import type {VersionConfig} from '../../config/types.js'
import type {ActivationHub} from '../../scaling/activation.js'
import {ConcurrencyGate, type ConcurrencyAccount, type GateLimits, type Refusal, type Waiter} from '../../scaling/concurrency-gate.js'
import type {Clock} from '../../time/clock.js'
import type {Cancellation} from '../cancellation.js'
import type {EndpointSet} from '../endpoint-set.js'
import {COLD_START_HEADER} from '../headers.js'
import type {Endpoint} from '../registry.js'
import {notActivated, throttled} from '../respond.js'
import {type CallContext, forward, type InstanceSlot, type Layer, type MeshRequest, type MeshResponse, onBodyDone, type Reply, type Service} from '../stack.js'

/** One destination's gates, one per scaled version; versions without `scaling:` have none. */
export class VersionGates {
  private readonly gates = new Map<string, ConcurrencyGate>()

  constructor(
    private readonly service: string,
    private readonly endpoints: EndpointSet,
    private readonly account: ConcurrencyAccount,
    private readonly clock: Clock,
  ) {}

  /** Whether any version is scaled (the activator layer is in the stack only then). */
  get size(): number {
    return this.gates.size
  }

  gate(version: string): ConcurrencyGate | undefined {
    return this.gates.get(version)
  }

  /**
   * The versions as mesh.yaml has them now (at start, on `mesh apply`): a newly scaled one
   * gets a gate, a changed `scaling:` applies to the next decision, a version no longer
   * scaled has its held requests answered (its in-flight ones still give their slots back).
   * Versions that may be at zero are routable with no instance (their requests are held).
   */
  sync(versions: readonly VersionConfig[]): void {
    const atZero = new Set<string>()
    for (const v of versions) {
      const s = v.scaling
      if (!s) continue
      if (s.minScale === 0) atZero.add(v.name)
      const limits: GateLimits = {
        containerConcurrency: s.containerConcurrency,
        maxScale: s.maxScale,
        queue: s.queue,
        activatorTimeoutMs: s.activatorTimeoutMs,
        reservedConcurrency: s.reservedConcurrency,
      }
      const gate = this.gates.get(v.name)
      if (gate) gate.setLimits(limits)
      else {
        const fresh = new ConcurrencyGate(this.service, v.name, limits, this.account, this.clock)
        this.gates.set(v.name, fresh)
        fresh.setInstances(this.endpoints.namesOf(v.name))
      }
    }
    for (const [name, gate] of this.gates) {
      if (versions.some((v) => v.name === name && v.scaling)) continue
      gate.close(`"${this.service}" ${name} is no longer an autoscaled version of the service (mesh apply or a deploy changed it); send the request again`)
      this.gates.delete(name)
    }
    this.endpoints.setRoutableAtZero(atZero)
  }

  /** The endpoint set changed: each gate learns its version's ready instances. */
  instancesChanged(): void {
    for (const [version, gate] of this.gates) gate.setInstances(this.endpoints.namesOf(version))
  }

  /** Requests held for `version` now (the autoscaler counts them as demand). */
  held(version: string): number {
    return this.gates.get(version)?.held ?? 0
  }

  /** `instance` left the mesh: requests held for it alone (at its published address) are answered now. */
  instanceGone(instance: string): void {
    for (const [version, gate] of this.gates) gate.instanceGone(instance, `instance ${instance} of "${this.service}" ${version} left the mesh while the request waited for it; send it again (through the mesh, any instance may serve it)`)
  }

  /** Starting instances of `version` failed: its held requests are answered now, with why. */
  startFailed(version: string, reason: string): void {
    this.gates.get(version)?.failHeld(reason)
  }

  /** Per scaled version: requests in flight through the gate and held (0 and 0 once none is under way). */
  load(): Record<string, {inFlight: number; held: number}> | undefined {
    if (this.gates.size === 0) return undefined
    const out: Record<string, {inFlight: number; held: number}> = {}
    for (const [version, gate] of this.gates) out[version] = {inFlight: gate.inFlight, held: gate.held}
    return out
  }

  close(): void {
    for (const gate of this.gates.values()) gate.close(`service "${this.service}" was removed from the mesh`)
    this.gates.clear()
  }
}

export const activator =
  (gates: VersionGates, hub: ActivationHub | undefined): Layer =>
  (inner) =>
    function activator(req, ctx, reply) {
      const gate = gates.gate(ctx.version!)
      // A version without `scaling:` of a scaled service: nothing to count.
      if (!gate) return inner(req, ctx, reply)
      new Attempt(gate, hub, inner, req, ctx, reply).enter()
    }

/**
 * The same for a call to one instance's published address (`ctx.endpoint`, set by the inbound
 * listener): a slot on that instance, held while it is busy or not ready yet.
 */
export const instanceActivator =
  (gatesOf: (service: string) => VersionGates | undefined, hub: ActivationHub | undefined): Layer =>
  (inner) =>
    function instanceActivator(req, ctx, reply) {
      const endpoint = ctx.endpoint!
      const gate = gatesOf(endpoint.service)?.gate(endpoint.version)
      if (!gate) return inner(req, ctx, reply)
      new Attempt(gate, hub, inner, req, ctx, reply, endpoint.instance).enter()
    }

/**
 * One attempt through the gate: a waiter while held, the balancer's slot once admitted,
 * and the reply that gives the slot back exactly once — when the response body is done,
 * or at once when the attempt fails (a client that left fails it too).
 */
class Attempt implements Waiter, InstanceSlot, Reply {
  private instance: string | undefined = undefined
  private state: 'new' | 'held' | 'admitted' | 'done' = 'new'
  private stopWaiting: (() => void) | undefined = undefined

  constructor(
    private readonly gate: ConcurrencyGate,
    private readonly hub: ActivationHub | undefined,
    private readonly inner: Service,
    private readonly req: MeshRequest,
    private readonly ctx: CallContext,
    private readonly next: Reply,
    /** The instance it must go to (its published address was called), claimed by the gate on admission. */
    private readonly pinned?: string,
  ) {}

  enter(): void {
    // Read once: a per-try timeout puts its own signal on the context for the next try.
    const signal: Cancellation = this.ctx.signal
    if (signal.aborted) return this.next.fail(signal.reason)
    if (this.ctx.mirror) {
      if (this.gate.tryEnter()) return this.forward()
      return this.next.fail(throttled(`a mirrored copy for "${this.gate.service}" ${this.gate.version} is dropped: no place is free now, and copies are never held`))
    }
    const entry = this.gate.enter(this, this.pinned)
    if (entry === 'admitted') return this.forward()
    if (entry !== 'held') return this.next.fail(throttled(entry.throttled))
    this.state = 'held'
    // The client left, or a timeout above fired: out of the queue, holding nothing.
    this.stopWaiting = whenAborted(signal, () => {
      if (this.state !== 'held') return
      this.state = 'done'
      this.gate.leave(this)
      this.next.fail(signal.reason)
    })
    this.hub?.poke(this.gate.service, this.gate.version)
  }

  admitted(waitedMs: number, coldStart: boolean): void {
    this.stopWaiting?.()
    if (coldStart) this.ctx.coldStartMs = waitedMs
    this.forward()
  }

  refused(refusal: Refusal): void {
    this.stopWaiting?.()
    this.state = 'done'
    this.next.fail(notActivated(refusal.reason))
  }

  private forward(): void {
    this.state = 'admitted'
    if (this.pinned !== undefined) this.instance = this.pinned
    else this.ctx.slot = this
    forward(this.inner, this.req, this.ctx, this)
  }

  free(all: readonly Endpoint[]): readonly Endpoint[] {
    const gate = this.gate
    // Usually every instance has a place (always, without containerConcurrency): the version's
    // own list then, so no array is made and the balancer reuses the list's names.
    for (let i = 0; i < all.length; i++) if (!gate.isFree(all[i].instance)) return all.filter((e) => gate.isFree(e.instance))
    return all
  }

  claim(endpoint: Endpoint): void {
    this.instance = endpoint.instance
    this.gate.claim(endpoint.instance)
  }

  ok(response: MeshResponse): void {
    const ms = this.ctx.coldStartMs
    if (ms !== undefined) response.headers.push(COLD_START_HEADER, String(Math.round(ms)))
    const tunnel = response.tunnel?.socket
    // A WebSocket session keeps its place while it is open, as Knative's queue-proxy counts
    // it: with containerConcurrency 1 an instance holds one session, not one per handshake.
    // Every way a tunnel ends destroys the instance's socket (tunnel.ts, dropResponse).
    if (tunnel) {
      if (tunnel.destroyed) this.release()
      else tunnel.once('close', () => this.release())
    } else onBodyDone(response, this)
    this.next.ok(response)
  }

  /** The response body is done (read, cut or dropped): the slot goes back. */
  bodyDone(): void {
    this.release()
  }

  fail(error: unknown): void {
    this.release()
    this.next.fail(error)
  }

  private release(): void {
    if (this.state !== 'admitted') return
    this.state = 'done'
    this.gate.release(this.instance)
  }
}
