// A fault as people write it — a mesh.yaml `faults.inject` entry, a chaos scenario
// step, or `mesh inject-fault` flags — checked and turned into a FaultSpec. One
// checker for all three, so the same words mean the same thing everywhere.
//
//   {service: payments, delay: 300ms, percent: 30%} ──checkFault──▶ FaultSpec | [{path, message}]
//   --delay 300ms --percent 30  ──fault-flags.ts──▶ same object ──checkFault──▶ same answer
import {suggestion} from '../config/did-you-mean.js'
import {missingUnit, parseDuration, parseSize} from '../config/duration.js'
import {CERT_FAULTS, type CertFault, type FaultKind, type FaultSide, type FaultSpec} from './fault.js'
import {GRPC_STATUS_NAMES, type GrpcStatusName, httpStatusOfGrpc} from '../proxy/grpc.js'
import {normalizePath} from '../security/path-normalizer.js'

/** The plain object a fault entry is, as parsed from YAML (or built from flags). */
export interface FaultEntry {
  service?: unknown
  version?: unknown
  delay?: unknown
  jitter?: unknown
  abort?: unknown
  reset?: unknown
  afterBytes?: unknown
  partition?: unknown
  blackhole?: unknown
  bandwidth?: unknown
  slowClose?: unknown
  kill?: unknown
  pause?: unknown
  cert?: unknown
  count?: unknown
  percent?: unknown
  first?: unknown
  from?: unknown
  header?: unknown
  path?: unknown
  duration?: unknown
  seed?: unknown
  at?: unknown
  jwksUnavailable?: unknown
}

export interface FaultProblem {
  /** The key the problem is about ('delay', 'header'), '' for the entry as a whole. */
  path: string
  message: string
}

export interface CheckFaultOptions {
  /** How a key is shown in messages: 'afterBytes' in YAML, '--after-bytes' for flags. */
  name?: (key: string) => string
  /** The mesh's services and their versions: when given, names are checked against them. */
  known?: Record<string, string[]>
  /** mesh.yaml's standing faults: kill and pause are one-off actions, not faults that stay. */
  perRequestOnly?: boolean
}

export type CheckedFault = {spec: FaultSpec; problems: []} | {spec?: undefined; problems: FaultProblem[]}

/** The keys that choose the kind; exactly one must be set. */
export const KIND_KEYS = ['delay', 'abort', 'reset', 'partition', 'bandwidth', 'slowClose', 'kill', 'pause', 'jwksUnavailable', 'cert'] as const
const KIND_OF: Record<(typeof KIND_KEYS)[number], FaultKind> = {
  delay: 'delay',
  abort: 'abort',
  reset: 'reset',
  partition: 'partition',
  bandwidth: 'bandwidth',
  slowClose: 'slow-close',
  kill: 'kill',
  pause: 'pause',
  jwksUnavailable: 'jwks-unavailable',
  cert: 'cert',
}
/** Modifiers that belong to one kind. */
const MODIFIER_OF: Record<string, (typeof KIND_KEYS)[number]> = {jitter: 'delay', afterBytes: 'reset', blackhole: 'partition', count: 'pause'}
/** Selectors choose requests; process faults (kill, pause) have none. */
const SELECTOR_KEYS = ['percent', 'first', 'from', 'header', 'path', 'seed', 'at'] as const
export const FAULT_KEYS: readonly string[] = ['service', 'version', ...KIND_KEYS, ...Object.keys(MODIFIER_OF), ...SELECTOR_KEYS, 'duration']

const SERVICE_NAME = /^[a-z][a-z0-9-]*$/
const VERSION_NAME = /^[a-z0-9][a-z0-9._-]*$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i
/** slow-close with no duration holds the end of the response this long (as describeFault shows). */
export const DEFAULT_SLOW_CLOSE_MS = 1000

/**
 * Worded as serviceNotFound (errors.ts), did-you-mean included, so a typo reads the same
 * in a fault or chaos step as on the command line; the known names stay inline because
 * a problem in a list has no hints to put them in.
 */
export function notInMesh(service: string, known: string[]): string {
  return `service "${service}" is not in the mesh${suggestion(service, known)} (known: ${known.join(', ') || 'none'})`
}

/** Check one fault entry; every problem is reported, not only the first. */
export function checkFault(raw: unknown, options: CheckFaultOptions = {}): CheckedFault {
  const name = options.name ?? ((k: string) => k)
  const problems: FaultProblem[] = []
  const problem = (path: string, message: string) => problems.push({path, message})
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return {problems: [{path: '', message: `expected a fault such as {service: payments, delay: 300ms}, got ${show(raw)}`}]}
  }
  const entry = raw as Record<string, unknown>
  for (const key of Object.keys(entry)) {
    if (!FAULT_KEYS.includes(key)) problem(key, `unknown key ${name(key)}; a fault takes ${FAULT_KEYS.map(name).join(', ')}`)
  }
  const has = (key: string) => entry[key] !== undefined && entry[key] !== false

  // Target.
  const service = entry.service
  if (typeof service !== 'string' || !SERVICE_NAME.test(service)) {
    problem('service', service === undefined ? 'a fault needs the service it targets' : `expected a service name (lowercase letters, digits, dashes), got ${show(service)}`)
  } else if (options.known && !(service in options.known) && !(service === 'ingress' && has('jwksUnavailable'))) {
    problem('service', notInMesh(service, Object.keys(options.known)))
  }
  const version = entry.version
  if (version !== undefined) {
    if (typeof version !== 'string' || !VERSION_NAME.test(version)) problem('version', `expected a version name such as v2, got ${show(version)}`)
    else if (options.known && typeof service === 'string' && options.known[service] && !options.known[service].includes(version)) {
      problem('version', `service "${service}" has no version "${version}" (its versions: ${options.known[service].join(', ')})`)
    }
  }

  // Kind: exactly one.
  const kinds = KIND_KEYS.filter(has)
  if (kinds.length === 0) {
    problem('', `a fault needs one kind: ${KIND_KEYS.map(name).join(', ')}`)
    return {problems}
  }
  if (kinds.length > 1) problem(kinds[1], `one kind per fault, got ${kinds.map(name).join(' and ')}; inject them as separate faults`)
  const kindKey = kinds[0]
  const kind = KIND_OF[kindKey]
  for (const [mod, owner] of Object.entries(MODIFIER_OF)) {
    // `count` also goes with kill (`kill: 2` is the same as `kill: true, count: 2`).
    if (has(mod) && owner !== kindKey && !(mod === 'count' && kindKey === 'kill')) problem(mod, `${name(mod)} goes with ${name(owner)}, not ${name(kindKey)}`)
  }
  const spec: FaultSpec = {service: String(service), kind}
  if (typeof version === 'string') spec.version = version

  switch (kindKey) {
    case 'delay': {
      spec.delayMs = duration(entry.delay, 'delay', {positive: true})
      if (entry.jitter !== undefined) spec.jitterMs = duration(entry.jitter, 'jitter', {positive: false})
      break
    }
    case 'abort': {
      const status = typeof entry.abort === 'string' && /^\d+$/.test(entry.abort.trim()) ? Number(entry.abort) : entry.abort
      // A gRPC status by name, as Istio's abort.grpcStatus: UNAVAILABLE, deadline-exceeded…
      const grpc = typeof status === 'string' ? GRPC_STATUS_NAMES.indexOf(status.trim().toUpperCase().replace(/-/g, '_') as GrpcStatusName) : -1
      if (grpc > 0) {
        spec.grpcStatus = grpc
        spec.status = httpStatusOfGrpc(grpc)
      } else if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
        problem('abort', `expected an HTTP status from 200 to 599 (such as 503) or a gRPC status (such as UNAVAILABLE), got ${show(entry.abort)}`)
      } else spec.status = status
      break
    }
    case 'reset': {
      flag('reset')
      if (entry.afterBytes !== undefined) {
        const bytes = parseSize(entry.afterBytes as string | number)
        if (bytes === undefined) problem('afterBytes', `expected a byte count such as 100 or 1kb, got ${show(entry.afterBytes)}`)
        else spec.afterBytes = bytes
      }
      break
    }
    case 'partition': {
      flag('partition')
      if (entry.blackhole !== undefined) spec.blackhole = flag('blackhole')
      break
    }
    case 'bandwidth': {
      const rate = parseBandwidth(entry.bandwidth)
      if (rate === undefined) problem('bandwidth', `expected bytes per time such as 16kb/s or 1mb/s, got ${show(entry.bandwidth)}`)
      else spec.bytesPerSecond = rate
      break
    }
    case 'slowClose': {
      spec.delayMs = entry.slowClose === true ? DEFAULT_SLOW_CLOSE_MS : duration(entry.slowClose, 'slowClose', {positive: true})
      break
    }
    case 'kill': {
      const n = entry.kill === true ? (entry.count === undefined ? 1 : count(entry.count, 'count')) : count(entry.kill, 'kill')
      if (entry.kill !== true && entry.count !== undefined) problem('count', `give the number once: ${name('kill')} N, or ${name('kill')} with ${name('count')} N`)
      spec.count = n
      break
    }
    case 'pause': {
      spec.pauseMs = duration(entry.pause, 'pause', {positive: true})
      if (entry.count !== undefined) spec.count = count(entry.count, 'count')
      break
    }
    case 'jwksUnavailable': {
      flag('jwksUnavailable')
      // It acts on the jwksUri fetches of the service's (or the ingress's) jwtRules, not on requests.
      for (const key of SELECTOR_KEYS) if (entry[key] !== undefined) problem(key, `${name(key)} does not apply to ${name('jwksUnavailable')}: it fails key fetches, not requests`)
      if (entry.duration !== undefined) spec.durationMs = duration(entry.duration, 'duration', {positive: true})
      return problems.length ? {problems} : {spec, problems: []}
    }
    case 'cert': {
      if (typeof entry.cert === 'string' && (CERT_FAULTS as readonly string[]).includes(entry.cert)) spec.cert = entry.cert as CertFault
      else problem('cert', `expected ${CERT_FAULTS.join(', ')}, got ${show(entry.cert)}${typeof entry.cert === 'string' ? suggestion(entry.cert, CERT_FAULTS) : ''}`)
      // A workload identity is the service's: every version presents the same certificate.
      if (typeof version === 'string') problem('version', `${name('cert')} acts on ${String(service)}'s identity, which all its versions share; drop @${version}`)
      break
    }
  }

  const processFault = kind === 'kill' || kind === 'pause'
  if (processFault && options.perRequestOnly) {
    problem(kindKey, `${name(kindKey)} is a one-off action on processes, not a fault that stays; use \`mesh inject-fault ${String(service)} --${kind}\` or a chaos scenario`)
  }
  if (processFault) {
    for (const key of [...SELECTOR_KEYS, 'duration']) {
      if (entry[key] === undefined) continue
      const why = key === 'duration' ? (kind === 'pause' ? `${name('pause')} already says how long` : 'a kill is instant') : 'it acts on processes, not on requests'
      problem(key, `${name(key)} does not apply to ${name(kindKey)}: ${why}`)
    }
  } else if (kind === 'cert') {
    for (const key of SELECTOR_KEYS) {
      if (entry[key] !== undefined) problem(key, `${name(key)} does not apply to ${name('cert')}: the certificate is presented on every connection, not chosen per request`)
    }
    if (entry.duration !== undefined) spec.durationMs = duration(entry.duration, 'duration', {positive: true})
  } else {
    if (entry.percent !== undefined) {
      const p = parsePercent(entry.percent)
      if (p === undefined) problem('percent', `expected a percentage from 0 to 100 (such as 30 or 30%), got ${show(entry.percent)}`)
      else spec.percent = p
    }
    if (entry.first !== undefined) {
      spec.first = count(entry.first, 'first')
      if (entry.percent !== undefined) problem('first', `${name('first')} and ${name('percent')} do not combine: ${name('first')} N hits exactly the first N matching requests`)
    }
    if (entry.from !== undefined) {
      if (typeof entry.from !== 'string' || !(SERVICE_NAME.test(entry.from) || entry.from === 'ingress')) {
        problem('from', `expected the calling service's name (or ingress), got ${show(entry.from)}`)
      } else if (options.known && entry.from !== 'ingress' && !(entry.from in options.known)) {
        const callers = [...Object.keys(options.known), 'ingress']
        problem('from', `"${entry.from}" is not a service in the mesh (or ingress)${suggestion(entry.from, callers)}; known: ${Object.keys(options.known).join(', ')}`)
      } else spec.from = entry.from
    }
    if (entry.header !== undefined) {
      const h = parseHeader(entry.header)
      if (!h) problem('header', `expected one header as name=value (or {name: value}), got ${show(entry.header)}`)
      else spec.header = h
    }
    if (entry.path !== undefined) {
      // Matched against the normalized path (security/path-normalizer.ts): a prefix written `/a/./b` must still match.
      const prefix = typeof entry.path === 'string' && entry.path.startsWith('/') ? normalizePath(entry.path) : undefined
      if (prefix === undefined) problem('path', `expected a path prefix starting with /, got ${show(entry.path)}`)
      else if (typeof prefix !== 'string') problem('path', prefix.reason)
      else spec.pathPrefix = prefix
    }
    if (entry.seed !== undefined) {
      const seed = typeof entry.seed === 'string' && /^\d+$/.test(entry.seed) ? Number(entry.seed) : entry.seed
      if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) problem('seed', `expected a whole number, got ${show(entry.seed)}`)
      else spec.seed = seed
    }
    if (entry.at !== undefined) {
      if (entry.at !== 'callee' && entry.at !== 'caller') problem('at', `expected callee (the service's inbound side, the default) or caller (its callers' outbound side), got ${show(entry.at)}`)
      else spec.at = entry.at as FaultSide
      // The caller's side acts before routing picks a version: it could not tell v1 from v2.
      if (entry.at === 'caller' && typeof version === 'string') problem('at', `${name('at')} caller acts before a version is chosen, so it cannot target ${service}@${version}; drop the version or act at the callee`)
    }
    if (entry.duration !== undefined) spec.durationMs = duration(entry.duration, 'duration', {positive: true})
  }
  return problems.length ? {problems} : {spec, problems: []}

  function duration(v: unknown, key: string, o: {positive: boolean}): number | undefined {
    const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined
    if (ms === undefined || (o.positive && ms <= 0)) {
      problem(key, `expected a ${o.positive ? 'positive ' : ''}duration such as 300ms or 2s, got ${show(v)}${missingUnit(v)}`)
      return undefined
    }
    return ms
  }

  function count(v: unknown, key: string): number | undefined {
    const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
      problem(key, `expected a whole number of at least 1, got ${show(v)}`)
      return undefined
    }
    return n
  }

  function flag(key: string): boolean {
    if (entry[key] !== true) problem(key, `expected true, got ${show(entry[key])}`)
    return true
  }
}

/** '16kb/s' → 16384, '1mb/s', '512b/100ms' → bytes per second; undefined if invalid. */
export function parseBandwidth(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined
  const m = /^\s*([^/\s]+)\s*\/\s*(\S+)\s*$/.exec(v)
  if (!m) return undefined
  const bytes = parseSize(m[1])
  const period = /^[\d.]/.test(m[2]) ? m[2] : `1${m[2]}`
  // A bare number after the slash is no unit at all: '16kb/5' is a typo, not 5 ms.
  const periodMs = /^[\d.]+$/.test(period) ? undefined : parseDuration(period)
  if (!bytes || !periodMs) return undefined
  return (bytes * 1000) / periodMs
}

/** 30, '30', '30%', '2.5%' → 0..100; undefined if invalid. */
export function parsePercent(v: unknown): number | undefined {
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim().replace(/%$/, '') : undefined
  if (text === undefined || !/^(\d+(\.\d+)?|\.\d+)$/.test(text)) return undefined
  const p = Number(text)
  return p >= 0 && p <= 100 ? p : undefined
}

/** 'x-user=alice', 'x-user: alice' or {x-user: alice} → {name, value}; names are lowercased as HTTP/1 headers arrive. */
export function parseHeader(v: unknown): {name: string; value: string} | undefined {
  let name: string
  let value: string
  if (typeof v === 'string') {
    const eq = v.indexOf('=')
    const colon = v.indexOf(':')
    const at = eq === -1 ? colon : colon === -1 ? eq : Math.min(eq, colon)
    if (at === -1) return undefined
    name = v.slice(0, at).trim()
    value = v.slice(at + 1).trim()
  } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1) {
    const [[k, val]] = Object.entries(v)
    if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') return undefined
    name = k
    value = String(val)
  } else return undefined
  if (!HEADER_NAME.test(name)) return undefined
  return {name: name.toLowerCase(), value}
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (typeof v === 'string') return JSON.stringify(v)
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}
