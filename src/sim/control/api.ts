// The control API written once: each route's method and path, what it takes (JSON body,
// query parameters) and what it answers. The daemon's handlers and the CLI's calls are both
// typed from this map, as hono derives its client from the server's routes, so the two
// sides cannot drift apart. Bodies come from the network: each route's `body` checks the
// shape before a handler sees it, and a malformed one is answered 400, never a crash.
import {MeshError} from '../errors.js'
import type {ExecTarget, MeshStatus} from './status.js'
import type {DaemonEvent} from './daemon.js'
import type {Stamped} from './event-log.js'
import type {ScalingRecord} from './scaling-history.js'
import type {Span} from '../telemetry/span.js'
import {CERT_FAULTS, type CertFault, type FaultInfo, type FaultKind, type FaultSide, type FaultSpec, PER_REQUEST_KINDS} from '../faults/fault.js'
import type {BlueGreenOptions, CanaryOptions, DeployPlan, DeployRecord, RollingOptions, Strategy, VersionOverrides} from '../deploy/deploy-types.js'
import type {ApplyResult} from './policy-diff.js'
import type {WarmUpResult} from './warm-up.js'
import type {StatBy, StatRow} from '../telemetry/metrics.js'
import type {TcpSeries} from '../telemetry/tcp-metrics.js'
import type {TraceStoreStats, TraceSummary} from '../telemetry/trace-store.js'
import type {SamplingStats} from '../telemetry/trace-sampler.js'
import type {TapLine} from '../telemetry/tap.js'
import type {JSONWebKeySet} from 'jose'
import type {CertificateListing} from '../security/workload-files.js'

/** The trace store's selection on the wire (`mesh traces`, trace export). */
type TraceParams = {service?: string; errors?: '1'; minDurationMs?: string; since?: string; complete?: '1'; limit?: string}

/**
 * Every JSON route: `body` is what a POST takes (absent: none), `query` its URL parameters
 * (strings, as a URL carries them), `response` what it answers.
 */
export interface ControlRoutes {
  'GET /v1/status': {response: MeshStatus}
  'GET /v1/events': {query: {since?: string}; response: Array<Stamped<DaemonEvent>>}
  'GET /v1/traces': {query: TraceParams; response: TraceSummary[]}
  'GET /v1/spans': {query: TraceParams; response: Span[]}
  'GET /v1/trace': {query: {id?: string}; response: Span[]}
  'GET /v1/trace-store': {response: TraceStoreStats & {sampling: SamplingStats}}
  'GET /v1/stat': {query: {by?: StatBy; windowMs?: string}; response: StatRow[]}
  'GET /v1/tcp': {response: TcpSeries[]}
  'GET /v1/exec': {query: {service?: string; version?: string; instance?: string}; response: ExecTarget}
  'POST /v1/stop': {body: {services: string[]}; response: MeshStatus}
  'POST /v1/start': {body: {services: string[]; profiles?: string[]}; response: MeshStatus}
  /** `env`: the variables mesh.yaml's ${VAR} read, as the caller's shell has them. */
  'POST /v1/apply': {body: {env?: NodeJS.ProcessEnv; dryRun?: boolean} | undefined; response: ApplyResult}
  'GET /v1/faults': {response: FaultInfo[]}
  /** The mesh's dev issuer's public keys (`issuer: mesh`; `mesh token` signs with the private one). */
  'GET /v1/jwks': {response: JSONWebKeySet}
  'POST /v1/faults': {body: FaultSpec; response: FaultInfo}
  'POST /v1/faults/clear': {body: {id?: string; service?: string}; response: FaultInfo[]}
  'POST /v1/deploys': {body: DeployPlan; response: DeployRecord}
  'GET /v1/deploys': {query: {service?: string}; response: DeployRecord[]}
  'GET /v1/deploy': {query: {id?: string}; response: DeployRecord}
  /** `mesh history`: the autoscaler's decisions and failed starts, oldest first (bounded per service). */
  'GET /v1/scaling': {query: {service?: string}; response: Array<Stamped<ScalingRecord>>}
  'POST /v1/rollback': {body: {service: string}; response: DeployRecord}
  /** `mesh up`: once every instance is healthy, a bounded burst through every simulated edge (warm-up.ts). */
  'POST /v1/warm-up': {response: WarmUpResult}
  'POST /v1/down': {response: {stopping: boolean}}
  /** `mesh certs`: what each identity presents now. */
  'GET /v1/certs': {response: CertificateListing[]}
  /** `mesh certs rotate [SERVICE]`: every identity issued so far without one. */
  'POST /v1/certs/rotate': {body: {service?: string}; response: CertificateListing[]}
}

/** Long-lived GETs answered as NDJSON, one `line` per line. */
export interface ControlStreams {
  '/v1/tap': {query: {service?: string; from?: string; to?: string; path?: string; method?: string; errors?: '1'; maxRps?: string}; line: TapLine}
}

export type RouteKey = keyof ControlRoutes
export type BodyOf<K extends RouteKey> = ControlRoutes[K] extends {body: infer B} ? B : undefined
export type QueryOf<K extends RouteKey> = ControlRoutes[K] extends {query: infer Q} ? Q : Record<string, never>
export type ResponseOf<K extends RouteKey> = ControlRoutes[K]['response']
export type StreamQueryOf<P extends keyof ControlStreams> = ControlStreams[P]['query']

/** What a request to route K carries: its body and query where it has them. */
export type RequestOf<K extends RouteKey> = (ControlRoutes[K] extends {body: infer B} ? (undefined extends B ? {body?: B} : {body: B}) : {body?: never}) &
  (ControlRoutes[K] extends {query: infer Q} ? {query?: Q} : {query?: never})

/** The daemon's side: one handler per route, typed by the map. */
export type ControlHandlers = {[K in RouteKey]: (input: {body: BodyOf<K>; query: QueryOf<K>}) => ResponseOf<K> | Promise<ResponseOf<K>>}

/** Checks a JSON value from the network is a K's body (throws MESH_BAD_REQUEST saying what is wrong). */
type BodyCheck<B> = (value: unknown) => B

/** The runtime half of the map: every route (the daemon serves exactly these), with the checks for its body and, where a value is one of a few, its query. */
export const controlRoutes: {[K in RouteKey]: {body?: BodyCheck<BodyOf<K>>; query?: BodyCheck<QueryOf<K>>}} = {
  'GET /v1/status': {},
  'GET /v1/events': {},
  'GET /v1/traces': {},
  'GET /v1/spans': {},
  'GET /v1/trace': {},
  'GET /v1/trace-store': {},
  'GET /v1/stat': {query: (v) => fields(v, {by: optional(oneOf<StatBy>('service', 'version', 'instance', 'edge')), windowMs: optional(string)})},
  'GET /v1/tcp': {},
  'GET /v1/exec': {},
  'POST /v1/stop': {body: (v) => fields(v, {services: stringArray})},
  'POST /v1/start': {body: (v) => fields(v, {services: stringArray, profiles: optional(stringArray)})},
  'POST /v1/apply': {body: (v) => (v === undefined ? undefined : fields(v, {env: optional(stringRecord), dryRun: optional(boolean)}))},
  'GET /v1/faults': {},
  'GET /v1/jwks': {},
  // Each field's type here; what the values mean (a service that exists, a status in
  // range) the daemon's injectFault checks, as for mesh.yaml's faults.inject.
  'POST /v1/faults': {body: (v) => shape<FaultSpec>(FAULT_SPEC)(v, '')},
  'POST /v1/faults/clear': {body: (v) => fields(v, {id: optional(string), service: optional(string)})},
  'POST /v1/deploys': {body: (v) => shape<DeployPlan>(DEPLOY_PLAN)(v, '')},
  'GET /v1/deploys': {},
  'GET /v1/deploy': {},
  'GET /v1/scaling': {},
  'POST /v1/rollback': {body: (v) => fields(v, {service: string})},
  'POST /v1/warm-up': {},
  'POST /v1/down': {},
  'GET /v1/certs': {},
  'POST /v1/certs/rotate': {body: (v) => fields(v, {service: optional(string)})},
}

export const controlStreams: {[P in keyof ControlStreams]: true} = {'/v1/tap': true}

/** "GET /v1/status" → its method and path. */
export function splitRoute(key: RouteKey): {method: 'GET' | 'POST'; path: string} {
  const [method, path] = key.split(' ') as ['GET' | 'POST', string]
  return {method, path}
}

/** The query string of a request (undefined values left out). */
export function queryString(query: unknown): string {
  const p = new URLSearchParams()
  for (const [key, value] of Object.entries(typeof query === 'object' && query ? query : {})) if (value !== undefined) p.set(key, String(value))
  const s = p.toString()
  return s ? `?${s}` : ''
}

/** `where`: the field's path in the body ('' for the body itself). */
function badBody(where: string, must: string): MeshError {
  return new MeshError('MESH_BAD_REQUEST', `control API: ${where ? `"${where}"` : 'the body'} ${must}`, {hints: ['The CLI and the daemon of one build agree on bodies; is this mesh run by another version?']})
}

type Check<T> = (value: unknown, where: string) => T

const string: Check<string> = (v, where) => {
  if (typeof v !== 'string') throw badBody(where, 'must be a string.')
  return v
}
const number: Check<number> = (v, where) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badBody(where, 'must be a number.')
  return v
}
const boolean: Check<boolean> = (v, where) => {
  if (typeof v !== 'boolean') throw badBody(where, 'must be true or false.')
  return v
}
const stringArray: Check<string[]> = (v, where) => {
  if (!Array.isArray(v)) throw badBody(where, 'must be a list of strings.')
  v.forEach((item, i) => string(item, `${where}[${i}]`))
  return v as string[]
}
const stringRecord: Check<Record<string, string>> = (v, where) => {
  const o = object(v, where)
  for (const [key, value] of Object.entries(o)) string(value, `${where}.${key}`)
  return o as Record<string, string>
}
function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, where) => (v === undefined ? undefined : check(v, where))
}
function object(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badBody(where, 'must be a JSON object.')
  return v as Record<string, unknown>
}

function oneOf<T extends string>(...values: T[]): Check<T> {
  return (v, where) => {
    if (!values.includes(v as T)) throw badBody(where, `must be one of ${values.join(', ')}.`)
    return v as T
  }
}
const numberArray: Check<number[]> = (v, where) => {
  if (!Array.isArray(v)) throw badBody(where, 'must be a list of numbers.')
  v.forEach((item, i) => number(item, `${where}[${i}]`))
  return v as number[]
}

/** Each field of T, by name, with its check: a field added to T and not here fails to compile. */
type Shape<T> = {[F in keyof Required<T>]: Check<T[F]>}

/** An object whose named fields pass their checks (fields not named are kept as sent, unread). */
function shape<T>(fieldsOf: Shape<T>): Check<T> {
  return (v, where) => {
    const o = object(v, where)
    for (const [name, check] of Object.entries(fieldsOf) as Array<[string, Check<unknown>]>) check(o[name], where ? `${where}.${name}` : name)
    return o as T
  }
}

/** The body as an object whose named fields pass their checks. */
function fields<S extends Record<string, Check<unknown>>>(v: unknown, checks: S): {[F in keyof S]: ReturnType<S[F]>} {
  return shape<{[F in keyof S]: ReturnType<S[F]>}>(checks as never)(v, '')
}

const nameValue = shape<{name: string; value: string}>({name: string, value: string})

const FAULT_SPEC: Shape<FaultSpec> = {
  service: string,
  version: optional(string),
  kind: oneOf<FaultKind>(...PER_REQUEST_KINDS, 'kill', 'pause', 'jwks-unavailable', 'cert'),
  delayMs: optional(number),
  jitterMs: optional(number),
  status: optional(number),
  grpcStatus: optional(number),
  afterBytes: optional(number),
  blackhole: optional(boolean),
  bytesPerSecond: optional(number),
  count: optional(number),
  pauseMs: optional(number),
  cert: optional(oneOf<CertFault>(...CERT_FAULTS)),
  percent: optional(number),
  first: optional(number),
  from: optional(string),
  header: optional(nameValue),
  pathPrefix: optional(string),
  at: optional(oneOf<FaultSide>('callee', 'caller')),
  durationMs: optional(number),
  seed: optional(number),
}

const DEPLOY_PLAN: Shape<DeployPlan> = {
  service: string,
  to: string,
  strategy: oneOf<Strategy>('rolling', 'blue-green', 'canary', 'restart'),
  overrides: optional(shape<VersionOverrides>({command: optional(string), env: optional(stringRecord), set: optional(stringRecord)})),
  rolling: optional(shape<RollingOptions>({maxSurge: number, maxUnavailable: number})),
  blueGreen: optional(shape<BlueGreenOptions>({smoke: optional(shape<{method: string; path: string}>({method: string, path: string})), keepMs: number})),
  canary: optional(
    shape<CanaryOptions>({
      steps: numberArray,
      intervalMs: number,
      maxErrorRate: number,
      maxP99Ms: optional(number),
      compareToPrimary: boolean,
      failureThreshold: number,
      match: optional(nameValue),
      mirror: optional(boolean),
      minRequests: number,
      loadRps: optional(number),
    }),
  ),
  progressDeadlineMs: number,
  check: optional(string),
}
