// `mesh sim --json` is a promise: the same file, seed and flags give the same bytes on any
// machine. Object keys therefore follow one fixed order (the contract's, sim-result.ts, and
// not whatever order the engine happened to fill them in), and every fraction is rounded to
// a fixed number of decimals, so a last-bit difference in a libm function on another CPU
// cannot reach the output.
import type {SimPoint, SimResult, SimScalingEvent, SimServiceStats} from './sim-result.js'

/** Decimals kept: a microsecond of a millisecond figure, a ten-thousandth of a percent of a ratio. */
export const DECIMALS = 6
const SCALE = 10 ** DECIMALS

/** A number as the output writes it: integers as they are, fractions to DECIMALS places, never -0; NaN and ±Infinity as null (JSON has neither). */
export function roundNumber(v: number): number | null {
  if (!Number.isFinite(v)) return null
  if (Number.isInteger(v)) return v === 0 ? 0 : v
  const r = Math.round(v * SCALE) / SCALE
  return r === 0 ? 0 : r
}

// The contract's field order, one list per interface; a key in none of them (added to the
// contract later) comes after the known ones, alphabetically.
const RESULT_KEYS: ReadonlyArray<keyof SimResult> = ['seed', 'durationMs', 'ingressRequests', 'hopRequests', 'services', 'errorsByCause', 'series', 'unstable', 'scaling', 'expectations']
const SERVICE_KEYS: ReadonlyArray<keyof SimServiceStats> = [
  'service', 'requests', 'successRate', 'actualRequests', 'actualSuccessRate', 'meanMs', 'p50', 'p95', 'p99', 'p999',
  'retries', 'retriesBudgetDenied', 'ejections', 'breakerRefusals', 'rateLimited', 'queueMsMean', 'serviceMsMean',
  'slots', 'utilisation', 'meanInFlight', 'littleLambdaW',
]
const POINT_KEYS: ReadonlyArray<keyof SimPoint> = ['atMs', 'service', 'rps', 'successRate', 'p99', 'queueDepth', 'instances']
const SCALING_KEYS: ReadonlyArray<keyof SimScalingEvent> = ['atMs', 'service', 'version', 'kind', 'from', 'to', 'coldStartMs', 'message']
const OTHER_KEYS = ['text', 'phase', 'actual', 'passed', 'utilisation']

const RANK = new Map<string, number>()
for (const key of [...RESULT_KEYS, ...SERVICE_KEYS, ...POINT_KEYS, ...SCALING_KEYS, ...OTHER_KEYS]) if (!RANK.has(key)) RANK.set(key, RANK.size)

/** Maps whose keys are data, not fields (errorsByCause): sorted by key, whatever the rank list says. */
const DATA_MAPS = new Set(['errorsByCause'])

function byRank(a: string, b: string): number {
  const x = RANK.get(a) ?? Infinity
  const y = RANK.get(b) ?? Infinity
  return x !== y ? x - y : a < b ? -1 : a > b ? 1 : 0
}

/**
 * A copy of `value` whose objects list their keys in the fixed order and whose numbers are
 * rounded (roundNumber); `undefined` fields are left out, as JSON.stringify would.
 */
export function canonical(value: unknown, dataMap = false): unknown {
  if (typeof value === 'number') return roundNumber(value)
  if (Array.isArray(value)) return value.map((v) => canonical(v))
  if (value === null || typeof value !== 'object') return value
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).filter((k) => record[k] !== undefined)
  keys.sort(dataMap ? (a, b) => (a < b ? -1 : a > b ? 1 : 0) : byRank)
  const out: Record<string, unknown> = {}
  for (const key of keys) out[key] = canonical(record[key], DATA_MAPS.has(key))
  return out
}

/** The SimResult as `--json` prints it. */
export function stableResult(result: SimResult): SimResult {
  return canonical(result) as SimResult
}

/** Two-space JSON of the canonical form, newline-terminated: the bytes `--json` and `--series x.json` write. */
export function stableJson(value: unknown): string {
  return `${JSON.stringify(canonical(value), null, 2)}\n`
}
