// A `protocol: tcp` service (a database, a cache, a broker): its callers get a TCP
// listener per such dependency ($DB_HOST, $DB_PORT, $DB_ADDR) instead of an HTTP
// sidecar, as Istio proxies TCP at L4. Each connection goes to an instance of the
// version the weights pick, by the balancer, skipping instances that refuse (as
// Envoy's TCP proxy retries a connect elsewhere); then bytes are copied both ways.
// A matching fault acts on the connection as Toxiproxy's toxics do:
//
//   delay      each chunk from the instance waits delay ± jitter (order kept)
//   bandwidth  bytes from the instance at most N per second
//   reset      N bytes from the instance (0 without afterBytes), then both sides reset
//   abort / partition   the connection is refused (reset) at once;
//   partition --blackhole  accepted and never answered, until the caller gives up
//   slow-close the instance's end of the stream reaches the caller delay later
//
// Connections are counted (tcp-metrics.ts); they are sessions, not requests in flight.
import net, {type Socket} from 'node:net'
import type {Endpoint} from './registry.js'
import type {FaultSpec} from '../faults/fault.js'
import type {FaultSet} from '../faults/fault-set.js'
import type {TcpEdge, TcpMetrics} from '../telemetry/tcp-metrics.js'
import type {Clock} from '../time/clock.js'
import type {Random} from '../time/random.js'

export interface TcpDeps {
  faults: FaultSet
  clock: Clock
  random: Random
  metrics?: TcpMetrics
}

/** Where a connection may go: `pick` avoids instances already tried; the balancer hears of each connection's life. */
export interface TcpTarget {
  /** Room for one more connection (circuitBreaker.maxConnections); `release` gives it back. */
  admit?(): boolean
  release?(): void
  pick(tried: ReadonlySet<string>): Endpoint | undefined
  opened?(endpoint: Endpoint): void
  closed?(endpoint: Endpoint): void
  /** The instance refused or dropped the connect (outlier detection counts it). */
  refused?(endpoint: Endpoint): void
}

/** Who connects, and to which service. */
export interface TcpCaller {
  source: string
  sourceVersion?: string
  destination: string
}

/** What the faults that hit one connection do to it. */
export interface TcpFaultPlan {
  refuse: boolean
  blackhole: boolean
  delayMs: number
  jitterMs: number
  bytesPerSecond: number
  resetAfter?: number
  slowCloseMs: number
}

// A connection has no path or headers: faults that select by them never hit it.
const NO_REQUEST = {path: '', header: () => undefined}
const SIDES = ['callee', 'caller'] as const
// Chunks from the instance held by a delay or bandwidth fault before reading pauses.
const MAX_HELD = 32

/** Proxies one accepted connection to an instance `target` picks. */
export function proxyTcp(client: Socket, caller: TcpCaller, target: TcpTarget, deps: TcpDeps): void {
  client.on('error', () => undefined)
  // Past maxConnections: a reset at once, TCP's form of 503 UO.
  if (target.admit && !target.admit()) return void client.resetAndDestroy()
  client.once('close', () => target.release?.())
  // Nothing the caller sends is lost while the instance is being connected.
  client.pause()
  const tried = new Set<string>()
  let plan: TcpFaultPlan | undefined
  const attempt = (): void => {
    const endpoint = target.pick(tried)
    // No instance left: a reset, TCP's form of 503 UH.
    if (!endpoint || tried.has(endpoint.instance)) return void client.resetAndDestroy()
    // Faults decide once per connection (their seen/hit counts are connections), not per connect attempt.
    if (tried.size === 0) plan = faultPlan(faultsFor(caller, endpoint.version, deps.faults))
    tried.add(endpoint.instance)
    if (plan?.refuse) return void client.resetAndDestroy()
    if (plan?.blackhole) {
      client.resume()
      return
    }
    const upstream = net.connect({host: endpoint.host, port: endpoint.port})
    let connected = false
    upstream.on('error', () => {
      if (connected) return void client.destroy()
      target.refused?.(endpoint)
      // Refused before anything was sent: the next instance, if there is one.
      if (!client.destroyed) attempt()
    })
    upstream.once('connect', () => {
      connected = true
      if (client.destroyed) return void upstream.destroy()
      const edge: TcpEdge = {...caller, destinationVersion: endpoint.version, destinationInstance: endpoint.instance}
      deps.metrics?.opened(edge)
      target.opened?.(endpoint)
      upstream.setNoDelay(true)
      client.setNoDelay(true)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => {
        deps.metrics?.closed(edge, upstream.bytesRead, upstream.bytesWritten)
        target.closed?.(endpoint)
        client.destroy()
      })
      client.pipe(upstream)
      if (plan) downstreamWithFaults(upstream, client, plan, deps)
      else upstream.pipe(client)
      client.resume()
    })
  }
  attempt()
}

/** The faults that hit this connection, on either side (one proxy per connection plays both). */
function faultsFor(caller: TcpCaller, version: string, faults: FaultSet): FaultSpec[] {
  const hits: FaultSpec[] = []
  for (const side of SIDES) {
    if (faults.any(side, caller.destination)) hits.push(...faults.match(side, caller.destination, version, {source: caller.source, ...NO_REQUEST}))
  }
  return hits
}

/** The combined effect of the faults that hit a connection; undefined when none did. */
export function faultPlan(hits: readonly FaultSpec[]): TcpFaultPlan | undefined {
  if (hits.length === 0) return undefined
  const plan: TcpFaultPlan = {refuse: false, blackhole: false, delayMs: 0, jitterMs: 0, bytesPerSecond: 0, slowCloseMs: 0}
  for (const f of hits) {
    switch (f.kind) {
      case 'abort':
        plan.refuse = true
        break
      case 'partition':
        if (f.blackhole) plan.blackhole = true
        else plan.refuse = true
        break
      case 'delay':
        plan.delayMs += f.delayMs ?? 0
        plan.jitterMs += f.jitterMs ?? 0
        break
      case 'bandwidth':
        plan.bytesPerSecond = f.bytesPerSecond ?? 0
        break
      case 'reset':
        plan.resetAfter = f.afterBytes ?? 0
        break
      case 'slow-close':
        plan.slowCloseMs = f.delayMs ?? 1000
        break
    }
  }
  return plan
}

/** The socket calls the fault path makes (a Socket; a stand-in in tests). */
export type TcpStream = Pick<Socket, 'on' | 'write' | 'end' | 'pause' | 'resume' | 'resetAndDestroy'>

/** Copies the instance's bytes to the caller through the plan's delay, bandwidth, reset and slow close. */
export function downstreamWithFaults(from: TcpStream, to: TcpStream, plan: TcpFaultPlan, deps: Pick<TcpDeps, 'clock' | 'random'>): void {
  const {clock, random} = deps
  let releaseAt = 0
  let sent = 0
  let held = 0
  let ended = false
  let cut = false
  const finish = () => {
    if (plan.slowCloseMs > 0) clock.setTimer(plan.slowCloseMs, () => to.end())
    else to.end()
  }
  const reset = () => {
    to.resetAndDestroy()
    from.resetAndDestroy()
  }
  if (plan.resetAfter === 0) return reset()
  from.on('data', (chunk: Buffer) => {
    if (cut) return
    let out = chunk
    if (plan.resetAfter !== undefined && sent + out.length >= plan.resetAfter) {
      out = out.subarray(0, plan.resetAfter - sent)
      cut = true
    }
    sent += out.length
    const now = clock.now()
    const delay = plan.delayMs + (plan.jitterMs ? (random.next() * 2 - 1) * plan.jitterMs : 0)
    let at = Math.max(now + Math.max(0, delay), releaseAt)
    if (plan.bytesPerSecond > 0) at = Math.max(at, releaseAt) + (out.length / plan.bytesPerSecond) * 1000
    releaseAt = at
    if (++held >= MAX_HELD) from.pause()
    const last = cut
    clock.setTimer(at - now, () => {
      if (out.length) to.write(out)
      if (--held < MAX_HELD) from.resume()
      if (last) reset()
      else if (ended && held === 0) finish()
    })
  })
  from.on('end', () => {
    ended = true
    if (held === 0 && !cut) finish()
  })
}
