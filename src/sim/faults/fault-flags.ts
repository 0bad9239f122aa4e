// `mesh inject-fault` flags → a FaultSpec. The flags are the fault entry's keys in
// kebab-case (`--after-bytes` is `afterBytes:`), checked by the one fault checker.
//
//   'payments@v2' + {delay: '300ms', percent: '30'} ──faultEntryFromFlags──▶ FaultEntry ──checkFault──▶ FaultSpec | MeshError
import {MeshError} from '../errors.js'
import {checkFault, DEFAULT_SLOW_CLOSE_MS, type FaultEntry} from './fault-config.js'
import type {FaultSpec} from './fault.js'

/** The flags as oclif hands them over: strings and booleans, absent when not given. */
export interface FaultFlags {
  delay?: string
  jitter?: string
  abort?: string
  reset?: boolean
  'after-bytes'?: string
  partition?: boolean
  blackhole?: boolean
  bandwidth?: string
  'slow-close'?: string
  kill?: string
  pause?: string
  cert?: string
  count?: string
  percent?: string
  first?: string
  from?: string
  header?: string
  path?: string
  duration?: string
  seed?: string
  at?: string
  'jwks-unavailable'?: boolean
}

/** 'afterBytes' → '--after-bytes' */
export const flagName = (key: string): string => (key === '' ? 'the flags' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)

/** `SERVICE[@VERSION]` → {service, version?}; the names are checked with the rest. */
export function parseTarget(target: string): {service: string; version?: string} {
  const at = target.indexOf('@')
  if (at === -1) return {service: target}
  return {service: target.slice(0, at), version: target.slice(at + 1)}
}

export function faultEntryFromFlags(target: string, flags: FaultFlags): FaultEntry {
  const entry: FaultEntry = {...parseTarget(target)}
  const set = (key: keyof FaultEntry, value: unknown) => {
    if (value !== undefined) entry[key] = value
  }
  set('delay', flags.delay)
  set('jitter', flags.jitter)
  set('abort', flags.abort)
  set('reset', flags.reset || undefined)
  set('afterBytes', flags['after-bytes'])
  set('partition', flags.partition || undefined)
  set('blackhole', flags.blackhole || undefined)
  set('bandwidth', flags.bandwidth)
  set('slowClose', flags['slow-close'])
  set('kill', flags.kill)
  set('pause', flags.pause)
  set('cert', flags.cert)
  set('count', flags.count)
  set('percent', flags.percent)
  set('first', flags.first)
  set('from', flags.from)
  set('header', flags.header)
  set('path', flags.path)
  set('duration', flags.duration)
  set('seed', flags.seed)
  set('at', flags.at)
  set('jwksUnavailable', flags['jwks-unavailable'] || undefined)
  return entry
}

/**
 * Checks the flags; throws MESH_BAD_FLAG naming every problem. `known` (services →
 * versions) lets a typo in a name fail here with the known names listed.
 */
export function parseFaultFlags(target: string, flags: FaultFlags, known?: Record<string, string[]>): FaultSpec {
  const checked = checkFault(faultEntryFromFlags(target, flags), {name: flagName, known})
  if (checked.spec) return checked.spec
  const lines = checked.problems.map((p) => (p.path === '' || p.path === 'service' || p.path === 'version' ? p.message : `${flagName(p.path)}: ${p.message}`))
  const target_ = checked.problems.some((p) => p.path === 'service' || p.path === 'version')
  throw new MeshError('MESH_BAD_FLAG', lines.length === 1 ? `${lines[0]}.` : `the fault has ${lines.length} problems:\n  ${lines.join('\n  ')}`, {
    hints: [
      ...(target_ ? ['The target is SERVICE or SERVICE@VERSION, as `mesh status` lists them.'] : []),
      'Example: mesh inject-fault payments --delay 300ms --percent 30 --duration 60s',
    ],
  })
}

/**
 * `--kill` and `--slow-close` take an optional value (`--kill` = one instance,
 * `--slow-close` = 1s); oclif has no optional-value flags, so a bare one gets its
 * default written in before parsing. A following word that is no count (or no
 * duration) is the next argument, not the value: `--kill cart` kills one cart.
 */
export function withOptionalValues(argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = argv[i + 1]
    if (arg === '--kill' && (next === undefined || !/^\d+$/.test(next))) out.push('--kill=1')
    else if (arg === '--slow-close' && (next === undefined || !/^(\d|\.\d)[\d.]*(ms|s|m|min|h)?$/.test(next))) out.push(`--slow-close=${DEFAULT_SLOW_CLOSE_MS}ms`)
    else out.push(arg)
  }
  return out
}
