// Durations, rates and sizes as people write them in mesh.yaml ('300ms', '200/s',
// '1kb'), turned into the numbers the code works with (ms, requests per period, bytes).

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000}

// One or more number+unit parts, Go style: '1.5s', '1m30s'. Longest unit names first
// so 'ms' and 'min' are not read as 'm' followed by garbage.
const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|min|s|m|h)/y
const BARE = /^(\d+(?:\.\d+)?|\.\d+)$/
/** A whole duration as PART reads it, for a JSON Schema's `pattern` (mesh schema). */
export const DURATION_PATTERN = `^(?:${PART.source})+$`

/**
 * '300ms' '1s' '1.5s' '2m' '1h' '1m30s' → ms; undefined if invalid. A number needs its unit,
 * as in Istio and Go: `3` could mean 3 ms or 3 s, so it is refused (missingUnit says so);
 * only 0 is the same in every unit.
 */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return v === 0 ? 0 : undefined
  if (typeof v !== 'string') return undefined
  const text = v.trim()
  if (text === '') return undefined
  if (BARE.test(text)) return Number(text) === 0 ? 0 : undefined
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex
    const m = PART.exec(text)
    if (!m || m.index !== at) return undefined
    total += Number(m[1]) * UNIT_MS[m[2]]
  }
  // Float error from '1.1s' and friends: durations are never finer than a microsecond.
  return Math.round(total * 1000) / 1000
}

/** For an error about a value parseDuration refused: what to write instead when it lacked only a unit; '' otherwise. */
export function missingUnit(v: unknown): string {
  const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : ''
  if (!BARE.test(text)) return ''
  return ` (a duration needs a unit: ms, s, m or h; did you mean ${text}ms or ${text}s?)`
}

/** 1500 → '1.5s', 300 → '300ms', 120000 → '2m', 3600000 → '1h'. parseDuration(formatDuration(ms)) === ms. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms)
  if (ms < 0) return `-${formatDuration(-ms)}`
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms >= 1000 && Number.isInteger(ms)) return `${trim(ms / 1000)}s`
  return `${trim(ms)}ms`
}

function trim(n: number): string {
  return String(Math.round(n * 1000) / 1000)
}

/** '200/s' '5/m' '5/min' '10/h' '20/100ms' → {requests, periodMs}; undefined if invalid. */
export function parseRate(v: string | number): {requests: number; periodMs: number} | undefined {
  if (typeof v !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\S+)\s*$/.exec(v)
  if (!m) return undefined
  const requests = Number(m[1])
  // '/s' is shorthand for '/1s'.
  const period = /^\d/.test(m[2]) || m[2].startsWith('.') ? m[2] : `1${m[2]}`
  const periodMs = parseDuration(period)
  if (requests <= 0 || periodMs === undefined || periodMs <= 0 || BARE.test(period)) return undefined
  return {requests, periodMs}
}

const SIZE_UNIT: Record<string, number> = {b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3}

/** 512 → 512, '512b' → 512, '1kb' → 1024, '2mb' → 2097152 (1024-based); undefined if invalid. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined
  if (typeof v !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v)
  if (!m) return undefined
  const unit = m[2].toLowerCase() || 'b'
  if (!(unit in SIZE_UNIT)) return undefined
  return Math.round(Number(m[1]) * SIZE_UNIT[unit])
}

/** 512 → '512b', 1536 → '1.5kb', 3145728 → '3mb': the units parseSize reads. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`
  }
  return `${bytes}b`
}

/** 0.01, '0.01' or '1%' → 0.01; undefined unless it is within 0..1 (0..100%). */
export function parseRatio(v: string | number): number | undefined {
  if (typeof v === 'number') return v >= 0 && v <= 1 ? v : undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v)
  const n = m ? Number(m[1]) / 100 : /^\s*\d+(?:\.\d+)?\s*$/.test(v) ? Number(v) : NaN
  return n >= 0 && n <= 1 ? n : undefined
}
