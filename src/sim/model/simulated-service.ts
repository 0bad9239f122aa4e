// A simulated service: an HTTP server whose latency, errors and downstream calls are
// declared in mesh.yaml (`simulate:`). It runs as a real child process behind a
// sidecar, so the mesh treats it exactly like a user's service.
//
//   request ─▶ /healthz? ─yes─▶ 200 at once
//                 └─no─▶ draw dice ─▶ capacity slot ─▶ downstream calls ─▶ sleep(latency) ─▶ error? ─▶ reply
//                                      (FIFO queue)     (via <DEP>_URL,      (a deadline heap on
//                                                        trace headers        the Clock: one wake
//                                                        forwarded, over      for all requests)
//                                                        keep-alive
//                                                        connections
//                                                        warmed at start)
// Nothing is logged per request: the sidecars' spans and access log say what happened.

import http from 'node:http'
import {Agent, request} from 'undici'
import type {Clock} from '../time/clock.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import type {LatencyDistribution, SimulateConfig, SimulatedCall} from '../config/types.js'
import {dependencyEnvName, EnvNames} from '../config/env-names.js'
import {MeshError} from '../errors.js'
import {Capacity} from './capacity.js'
import {LATENCY_DISTRIBUTIONS, latencyModel} from './latency-model.js'
import {DeadlineHeap} from '../time/deadline-queue.js'
import {WarmConnections} from './warm-connections.js'

/** Connections opened to each dependency's sidecar listener before the service listens. */
export const WARM_CONNECTIONS_PER_DEPENDENCY = 2

export interface SimulatedServiceOptions {
  config: SimulateConfig
  service: string
  version: string
  instance: string
  /** service name → base URL of the caller's outbound sidecar for it (`$INVENTORY_URL`). */
  dependencyUrls: Record<string, string>
  clock: Clock
  random: Random
  /**
   * Where requests sleep their latency: one heap of deadlines over one wake. The process
   * passes one over a PreciseWake (sub-millisecond); by default the clock's own timer.
   */
  sleeps?: DeadlineHeap
}

export interface SimulatedService {
  server: http.Server
  /**
   * Opens connections to every dependency's outbound sidecar listener, bounded by
   * `withinMs`; never fails (a sidecar not listening yet is dialled again on the first call).
   */
  warm(withinMs: number): Promise<void>
  /** Stops accepting, lets in-flight requests finish, then closes the downstream pool. Idempotent. */
  close(): Promise<void>
  /** Ends it at once, as a killed process ends: listening stops, every connection and downstream call is reset. */
  destroy(): void
}

/** One downstream call as the response reports it. status 0 = no HTTP answer (connection error). */
export interface CallResult {
  service: string
  status: number
  ms: number
  error?: string
}

/**
 * Trace and request-id headers passed on unchanged, as a well-behaved service does
 * behind Istio: the sidecar makes the span ids, the service only forwards them.
 */
export const FORWARDED_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'baggage', 'x-request-id', 'b3']
const FORWARDED_PREFIX = 'x-b3-'

export const HEALTH_PATH = '/healthz'

/**
 * The W3C tracestate entry on the requests of the mesh's warm-up (control/warm-up.ts). A
 * warm-up request runs the same code as any other but draws from dice of its own, sleeps at
 * most WARM_UP_MAX_SLEEP_MS and never fails: the service's seeded stream (what a `seed:` replays) and the mesh's view of its
 * errors (outlier detection) are the same with or without a warm-up before them. It is passed
 * on to the downstream calls with the trace headers.
 */
export const WARM_UP_TRACESTATE = 'meshsim=warm-up'

/**
 * A warm-up request sleeps at most this long. The burst is there to run the code (V8 compiles
 * what runs often) and fill the pools, not to wait: at its 64 requests in flight, the shop's
 * 20–250 ms latencies held it to ~700 requests in its 1.2 s, against thousands when each
 * answer waits at most a millisecond. It still waits, so the timer path is run too.
 */
export const WARM_UP_MAX_SLEEP_MS = 1

/** Everything random about one request, drawn before its first await so the order is fixed per seed. */
interface Plan {
  calls: SimulatedCall[]
  latencyMs: number
  fail: boolean
}

export function createSimulatedService(opts: SimulatedServiceOptions): SimulatedService {
  const {config, service, version, instance, dependencyUrls, clock, random} = opts
  const latency = latencyModel(config.latency)
  const sleeps = opts.sleeps ?? new DeadlineHeap(clock)
  const warmUpRandom = new SeededRandom(seedFrom('warm-up', instance))
  const capacity = new Capacity(config.concurrency)
  const warmed = new WarmConnections()
  // One keep-alive pool for all dependencies: each is one origin (an outbound sidecar listener).
  const agent = new Agent({keepAliveTimeout: 4_000, connections: 64, connect: warmed.connect})
  let draining = false

  // Draw order per request: one uniform per declared call (even at probability 0 or 1,
  // so the stream does not depend on the outcome), then the latency, then the error.
  function draw(warmUp: boolean): Plan {
    const dice = warmUp ? warmUpRandom : random
    const calls = config.calls.filter((call) => dice.next() < call.probability)
    const sampled = latency.sample(dice)
    const latencyMs = warmUp ? Math.min(sampled, WARM_UP_MAX_SLEEP_MS) : sampled
    const fail = !warmUp && dice.next() < config.errorRate
    return {calls, latencyMs, fail}
  }

  async function callOne(call: SimulatedCall, headers: Record<string, string | string[]>): Promise<CallResult> {
    const base = dependencyUrls[call.service]
    if (!base) {
      return {service: call.service, status: 0, ms: 0, error: `${dependencyEnvName(call.service)} is not set`}
    }
    const started = clock.now()
    try {
      const res = await request(joinUrl(base, call.path), {
        method: call.method as 'GET',
        headers,
        dispatcher: agent,
      })
      // Read the body to its end so the connection goes back to the pool.
      for await (const _chunk of res.body) void _chunk
      return {service: call.service, status: res.statusCode, ms: roundMs(clock.now() - started)}
    } catch (error) {
      return {service: call.service, status: 0, ms: roundMs(clock.now() - started), error: describeError(error)}
    }
  }

  async function makeCalls(calls: SimulatedCall[], headers: Record<string, string | string[]>): Promise<CallResult[]> {
    if (config.callMode === 'parallel') return Promise.all(calls.map((call) => callOne(call, headers)))
    const results: CallResult[] = []
    for (const call of calls) {
      const result = await callOne(call, headers)
      results.push(result)
      // A sequential handler stops at the first failed dependency, as real code does.
      if (failed(result)) break
    }
    return results
  }

  function send(res: http.ServerResponse, status: number, body: string): void {
    if (res.headersSent || res.destroyed) return
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-mesh-served-by': instance,
    }
    // While draining, keep-alive connections close after their last answer.
    if (draining) headers.connection = 'close'
    res.writeHead(status, headers)
    res.end(body)
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const path = req.url ?? '/'
    if (method === 'GET' && pathOf(path) === HEALTH_PATH) {
      req.resume()
      return send(res, 200, '{"status":"ok"}')
    }
    const plan = draw(isWarmUp(req.headers.tracestate))
    await drain(req)
    // A caller that leaves while queued gives its place up (a caller gone mid-work is served to the end, as a real server would).
    // Only a bounded capacity queues: an unbounded one is not given the signal, nor the listener, on every request.
    const release = await capacity.acquire(capacity.limit > 0 ? whenCallerLeaves(res) : undefined)
    try {
      const calls = await makeCalls(plan.calls, forwardedHeaders(req.headers))
      const identity = {service, version, instance, method, path}
      const broken = calls.find(failed)
      if (broken) {
        // Fail fast: the dependency's failure is this request's answer, without our own latency.
        const reason = broken.status === 0
          ? `dependency "${broken.service}" failed: ${broken.error ?? 'no response'}`
          : `dependency "${broken.service}" answered ${broken.status}`
        return send(res, config.callErrorStatus ?? 500, JSON.stringify({
          ...identity, error: reason, dependency: broken.service, status: broken.status, calls,
        }))
      }
      if (plan.latencyMs > 0) await sleeps.sleep(plan.latencyMs)
      if (plan.fail) {
        return send(res, config.errorStatus, JSON.stringify({
          ...identity, error: `simulated error (errorRate ${config.errorRate})`, calls,
        }))
      }
      send(res, 200, padded({...identity, calls}, config.responseBytes))
    } finally {
      release()
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      send(res, 500, JSON.stringify({service, instance, error: describeError(error)}))
    })
  })

  let closing: Promise<void> | undefined
  function close(): Promise<void> {
    closing ??= (async () => {
      draining = true
      await new Promise<void>((resolve) => {
        // The callback fires once every in-flight request has been answered
        // (or at once, with an error we ignore, if the server never listened).
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      warmed.close()
      await agent.close()
    })()
    return closing
  }

  function destroy(): void {
    draining = true
    server.close()
    server.closeAllConnections()
    warmed.close()
    void agent.destroy().catch(() => undefined)
  }

  function warm(withinMs: number): Promise<void> {
    const called = new Set(config.calls.map((call) => call.service))
    const urls = Object.entries(dependencyUrls).filter(([dep]) => called.has(dep)).map(([, url]) => url)
    return warmed.open(urls, WARM_CONNECTIONS_PER_DEPENDENCY, withinMs)
  }

  return {server, warm, close, destroy}
}

/** What the child process needs from its environment, parsed and checked. */
export interface SimulatedServiceEnv {
  port: number
  service: string
  version: string
  instance: string
  config: SimulateConfig
  dependencyUrls: Record<string, string>
  /** Dependencies called in `calls` whose `<DEP>_URL` is not set. */
  missingUrls: string[]
}

/** Reads the env contract (see env-names.ts); throws MeshError MESH_BAD_ENV with what is wrong. */
export function readSimulatedServiceEnv(env: NodeJS.ProcessEnv): SimulatedServiceEnv {
  const rawPort = env[EnvNames.port]
  const port = Number(rawPort)
  if (rawPort === undefined || rawPort.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeshError('MESH_BAD_ENV', `${EnvNames.port} must be a port number (0-65535), got ${JSON.stringify(rawPort ?? null)}.`, {
      hints: ['The mesh supervisor sets PORT; to run by hand: PORT=8080 MESH_SIMULATE=\'{"latency":{"p50Ms":5,"p99Ms":20}}\' node dist/sim/model/simulated-service-main.js'],
    })
  }
  const rawConfig = env[EnvNames.simulate]
  if (rawConfig === undefined || rawConfig.trim() === '') {
    throw new MeshError('MESH_BAD_ENV', `${EnvNames.simulate} is not set; it must hold the service's simulate config as JSON.`)
  }
  let json: unknown
  try {
    json = JSON.parse(rawConfig)
  } catch (error) {
    throw new MeshError('MESH_BAD_ENV', `${EnvNames.simulate} is not valid JSON: ${describeError(error)}`, {cause: error})
  }
  const config = parseSimulateConfig(json)
  const service = env[EnvNames.service] || 'simulated'
  const version = env[EnvNames.version] || 'v1'
  const instance = env[EnvNames.instance] || `${service}-${version}-0`
  const dependencyUrls: Record<string, string> = {}
  const missingUrls: string[] = []
  for (const call of config.calls) {
    if (call.service in dependencyUrls || missingUrls.includes(call.service)) continue
    const url = env[dependencyEnvName(call.service)]
    if (url) dependencyUrls[call.service] = url
    else missingUrls.push(call.service)
  }
  return {port, service, version, instance, config, dependencyUrls, missingUrls}
}

/**
 * Checks a SimulateConfig that arrived as JSON. Missing fields take the defaults a
 * bare `simulate: {}` would get; fields of the wrong type are an error.
 */
export function parseSimulateConfig(json: unknown): SimulateConfig {
  const bad = (path: string, expected: string, got: unknown): never => {
    throw new MeshError('MESH_BAD_ENV', `${EnvNames.simulate}.${path}: expected ${expected}, got ${JSON.stringify(got)}.`)
  }
  const obj = (value: unknown, path: string): Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(path, 'an object', value)
    return value as Record<string, unknown>
  }
  const num = (o: Record<string, unknown>, key: string, path: string, fallback: number, check: (n: number) => boolean, expected: string): number => {
    const value = o[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || !check(value)) bad(path + key, expected, value)
    return value as number
  }
  const str = (o: Record<string, unknown>, key: string, path: string, fallback: string): string => {
    const value = o[key]
    if (value === undefined) return fallback
    if (typeof value !== 'string' || value === '') bad(path + key, 'a non-empty string', value)
    return value as string
  }
  const nonNegative = (n: number) => n >= 0
  const ratio = (n: number) => n >= 0 && n <= 1

  // The percentiles, and the distribution's own parameters when it is not the log-normal (see latency-model.ts).
  const latencyOf = (value: unknown, path: string): SimulateConfig['latency'] => {
    const l = obj(value, path)
    const at = `${path}.`
    const p50Ms = num(l, 'p50Ms', at, 0, nonNegative, 'milliseconds >= 0')
    const p99Ms = num(l, 'p99Ms', at, p50Ms, (n) => n >= p50Ms, `milliseconds >= p50Ms (${p50Ms})`)
    const distribution = l.distribution ?? 'lognormal'
    if (!(LATENCY_DISTRIBUTIONS as readonly unknown[]).includes(distribution)) bad(at + 'distribution', LATENCY_DISTRIBUTIONS.join(' | '), distribution)
    if (distribution === 'lognormal') return {p50Ms, p99Ms}
    if (distribution === 'empirical') {
      const samples = l.samplesMs
      if (!Array.isArray(samples) || samples.length === 0 || !samples.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) {
        bad(at + 'samplesMs', 'a non-empty array of milliseconds >= 0', samples)
      }
      return {p50Ms, p99Ms, distribution, samplesMs: samples as number[]}
    }
    return {p50Ms, p99Ms, distribution: distribution as LatencyDistribution, meanMs: num(l, 'meanMs', at, distribution === 'constant' ? p50Ms : p50Ms / Math.LN2, nonNegative, 'milliseconds >= 0')}
  }

  const root = obj(json, '(root)')
  const latency = latencyOf(root.latency ?? {}, 'latency')
  const rawCalls = root.calls ?? []
  if (!Array.isArray(rawCalls)) bad('calls', 'an array', rawCalls)
  const calls = (rawCalls as unknown[]).map((raw, i): SimulatedCall => {
    const call = obj(raw, `calls[${i}]`)
    const at = `calls[${i}].`
    const path = str(call, 'path', at, '/')
    if (!path.startsWith('/')) bad(at + 'path', 'a path starting with "/"', path)
    const service = call.service
    if (typeof service !== 'string' || service === '') bad(at + 'service', 'a service name', service)
    return {
      service: service as string,
      probability: num(call, 'probability', at, 1, ratio, 'a ratio 0..1'),
      path,
      method: str(call, 'method', at, 'GET').toUpperCase(),
    }
  })
  const callMode = root.callMode ?? 'sequential'
  if (callMode !== 'sequential' && callMode !== 'parallel') bad('callMode', '"sequential" or "parallel"', callMode)
  let coldStart: SimulateConfig['coldStart']
  if (root.coldStart !== undefined) {
    coldStart = latencyOf(root.coldStart, 'coldStart')
  }
  return {
    latency,
    errorRate: num(root, 'errorRate', '', 0, ratio, 'a ratio 0..1'),
    errorStatus: num(root, 'errorStatus', '', 500, (n) => Number.isInteger(n) && n >= 100 && n <= 599, 'an HTTP status 100..599'),
    ...(root.callErrorStatus !== undefined ? {callErrorStatus: num(root, 'callErrorStatus', '', 500, (n) => Number.isInteger(n) && n >= 100 && n <= 599, 'an HTTP status 100..599')} : {}),
    calls,
    callMode: callMode as SimulateConfig['callMode'],
    responseBytes: num(root, 'responseBytes', '', 256, (n) => Number.isInteger(n) && n >= 0, 'a byte count >= 0'),
    concurrency: num(root, 'concurrency', '', 0, (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0 (0 = unbounded)'),
    seed: num(root, 'seed', '', 0, Number.isInteger, 'an integer'),
    ...(coldStart ? {coldStart} : {}),
  }
}

function forwardedHeaders(incoming: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue
    if (FORWARDED_HEADERS.includes(name) || name.startsWith(FORWARDED_PREFIX)) out[name] = value
  }
  return out
}

function isWarmUp(tracestate: string | string[] | undefined): boolean {
  if (tracestate === undefined) return false
  return typeof tracestate === 'string' ? tracestate.includes(WARM_UP_TRACESTATE) : tracestate.some((t) => t.includes(WARM_UP_TRACESTATE))
}

function failed(result: CallResult): boolean {
  return result.status === 0 || result.status >= 500
}

/** JSON of `body` with a `pad` string making it about `bytes` long (never shorter than the body itself). */
export function padded(body: object, bytes: number): string {
  const bare = JSON.stringify({...body, pad: ''})
  const missing = bytes - Buffer.byteLength(bare)
  if (missing <= 0) return bare
  // One stringify per answer, not two: the empty pad is the last key, so the x's go before its closing quote.
  if (bare.endsWith('"pad":""}')) return `${bare.slice(0, -2)}${'x'.repeat(missing)}"}`
  return JSON.stringify({...body, pad: 'x'.repeat(missing)})
}

function whenCallerLeaves(res: http.ServerResponse): AbortSignal {
  const left = new AbortController()
  res.once('close', () => res.writableEnded || left.abort(new Error('the caller went away while queued')))
  return left.signal
}

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`)
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

function drain(req: http.IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve()
  return new Promise((resolve) => {
    req.on('end', resolve)
    req.on('error', () => resolve())
    req.on('close', () => resolve())
    req.resume()
  })
}

function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as {code?: unknown}).code
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}
