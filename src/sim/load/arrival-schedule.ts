// When open-loop requests are due: a rate shape (idle, constant, linear ramps, one after
// another) and an arrival process over it. Arrivals never wait on responses; the load
// generator only asks this module for the next intended send time.
//
//   shape: [idle 10s][0→200/s over 30s][200/s for 60s]
//   Λ(t) = requests expected by t (the area under the rate)
//   uniform: request k is due when Λ(t) = k        (a constant rate gives t_k = k/rps, as before)
//   poisson: request k is due when Λ(t) = E_1+…+E_k, E ~ Exp(1)   (time-rescaled Poisson process:
//            exponential gaps of mean 1/rate, and a ramp's rate changing under them)
import {formatDuration, parseDuration} from '../config/duration.js'
import type {Random} from '../time/random.js'

export type Arrivals = 'uniform' | 'poisson'
export const ARRIVALS: readonly Arrivals[] = ['uniform', 'poisson']

/** A stretch of the run whose rate moves linearly from `fromRps` to `toRps`; both 0 is idle. */
export interface RateSegment {
  durationMs: number
  fromRps: number
  toRps: number
}

export interface LoadShape {
  segments: RateSegment[]
  arrivals: Arrivals
}

export function constantShape(rps: number, durationMs: number, arrivals: Arrivals = 'uniform'): LoadShape {
  return {segments: [{durationMs, fromRps: rps, toRps: rps}], arrivals}
}

export function shapeDurationMs(shape: LoadShape): number {
  return shape.segments.reduce((sum, s) => sum + s.durationMs, 0)
}

/** Requests the shape asks for on average: the area under the rate (exact for uniform arrivals). */
export function expectedArrivals(shape: LoadShape): number {
  return shape.segments.reduce((sum, s) => sum + area(s), 0)
}

export function peakRps(shape: LoadShape): number {
  return Math.max(0, ...shape.segments.map((s) => Math.max(s.fromRps, s.toRps)))
}

/** What is wrong with a shape, or undefined: rates must be finite and not negative, durations positive, some load asked for. */
export function shapeProblem(shape: LoadShape): string | undefined {
  for (const s of shape.segments) {
    if (!(s.durationMs > 0) || !Number.isFinite(s.durationMs)) return `a duration must be positive, got ${s.durationMs}ms`
    for (const r of [s.fromRps, s.toRps]) if (!(r >= 0) || !Number.isFinite(r)) return `a rate must be a number of requests per second ≥ 0, got ${r}`
  }
  if (!ARRIVALS.includes(shape.arrivals)) return `arrivals must be ${ARRIVALS.join(' or ')}, got ${String(shape.arrivals)}`
  if (Math.floor(expectedArrivals(shape) + 1e-9) < 1) return 'the load sends no request at all'
  return undefined
}

const RAMP = /^\s*([^:/\s]+)\s*:\s*([^:/\s]+?)(?:\/s)?\s*\/\s*(\S+)\s*$/

/**
 * `FROM:TO/DURATION` (`0:200/30s`: the rate rising linearly from 0 to 200 requests/s over
 * 30 s) → a segment, or a message saying what is wrong.
 */
export function parseRamp(text: string): RateSegment | string {
  const example = 'write FROM:TO/DURATION, e.g. 0:200/30s (0 to 200 requests/s over 30 s)'
  const m = RAMP.exec(text)
  if (!m) return `"${text}" is not a ramp: ${example}`
  const [fromRps, toRps] = [Number(m[1]), Number(m[2])]
  for (const [raw, r] of [[m[1], fromRps], [m[2], toRps]] as const) {
    if (!Number.isFinite(r) || r < 0) return `"${text}": rate "${raw}" is not a number of requests per second ≥ 0; ${example}`
  }
  const durationMs = parseDuration(m[3])
  if (!durationMs || !(durationMs > 0)) return `"${text}": "${m[3]}" is not a positive duration; ${example}`
  return {durationMs, fromRps, toRps}
}

export interface ShapeRequest {
  /** Idle this long first (a burst after idle: after 10s, rps 500 for 5s). */
  afterMs?: number
  /** FROM:TO/DURATION, played in order after the idle stretch. */
  ramps?: string[]
  /** A constant rate for `durationMs`, after the ramps. */
  rps?: number
  durationMs?: number
  arrivals?: Arrivals
}

/**
 * The shape asked for, or what is wrong with it (ramps' messages start with the ramp as
 * written, so a caller can put its flag or key name in front).
 */
export function shapeOf(r: ShapeRequest): LoadShape | string {
  const segments: RateSegment[] = []
  if (r.afterMs !== undefined) {
    if (!(r.afterMs >= 0) || !Number.isFinite(r.afterMs)) return `the idle stretch before the load must be a duration ≥ 0, got ${r.afterMs}ms`
    if (r.afterMs > 0) segments.push({durationMs: r.afterMs, fromRps: 0, toRps: 0})
  }
  for (const text of r.ramps ?? []) {
    const ramp = parseRamp(text)
    if (typeof ramp === 'string') return ramp
    segments.push(ramp)
  }
  if ((r.rps === undefined) !== (r.durationMs === undefined)) {
    return r.rps === undefined ? 'a duration needs a rate (rps) to hold for it' : 'a rate (rps) needs a duration to hold it for'
  }
  if (r.rps !== undefined) {
    if (!(r.rps > 0) || !Number.isFinite(r.rps)) return `a rate must be a positive number of requests per second, got ${r.rps}`
    segments.push({durationMs: r.durationMs!, fromRps: r.rps, toRps: r.rps})
  }
  if (!segments.some((s) => s.fromRps > 0 || s.toRps > 0)) return 'no load asked for: give a rate and a duration, or a ramp'
  const shape: LoadShape = {segments, arrivals: r.arrivals ?? 'uniform'}
  return shapeProblem(shape) ?? shape
}

/** 'idle 10s, then 500 rps for 5s, poisson arrivals' */
export function describeShape(shape: LoadShape): string {
  const parts = shape.segments.map((s) =>
    s.fromRps === 0 && s.toRps === 0
      ? `idle ${formatDuration(s.durationMs)}`
      : s.fromRps === s.toRps
        ? `${s.fromRps} rps for ${formatDuration(s.durationMs)}`
        : `${s.fromRps}→${s.toRps} rps over ${formatDuration(s.durationMs)}`,
  )
  return `${parts.join(', then ')}${shape.arrivals === 'poisson' ? ', poisson arrivals' : ''}`
}

/**
 * The intended send times of a shape, in ms from the start, in order. Uniform arrivals need
 * no Random; Poisson arrivals draw every gap from the one given, so a seed replays the run.
 */
export class ArrivalSchedule {
  private readonly totalArea: number
  private readonly uniformCount: number
  /** Λ at the target of the next arrival. */
  private target = 0
  private count = 0
  // The segment the last arrival fell in, and Λ and t at its start: targets only grow.
  private seg = 0
  private segStartArea = 0
  private segStartMs = 0

  constructor(
    private readonly shape: LoadShape,
    private readonly random?: Random,
  ) {
    const problem = shapeProblem(shape)
    if (problem) throw new RangeError(problem)
    if (shape.arrivals === 'poisson' && !random) throw new RangeError('poisson arrivals need a Random')
    this.totalArea = expectedArrivals(shape)
    // A hair of tolerance: 200 rps × 5 s is not always exactly 1000 in floating point.
    this.uniformCount = Math.floor(this.totalArea + 1e-9)
    if (shape.arrivals === 'poisson') this.target = this.exponential()
  }

  /** The next arrival's time (ms from the start), or undefined when the shape is over. */
  next(): number | undefined {
    if (this.shape.arrivals === 'uniform') {
      if (this.count >= this.uniformCount) return undefined
      const t = this.timeAt(Math.min(this.count, this.totalArea))
      this.count++
      return t
    }
    if (this.target >= this.totalArea) return undefined
    const t = this.timeAt(this.target)
    this.count++
    this.target += this.exponential()
    return t
  }

  /** Arrivals handed out so far. */
  get issued(): number {
    return this.count
  }

  private exponential(): number {
    // 1 − U is in (0, 1]: log never sees 0.
    return -Math.log(1 - this.random!.next())
  }

  /** Λ⁻¹(a): the time by which `a` requests are expected. */
  private timeAt(a: number): number {
    const segments = this.shape.segments
    while (this.seg < segments.length - 1 && this.segStartArea + area(segments[this.seg]) <= a) {
      this.segStartArea += area(segments[this.seg])
      this.segStartMs += segments[this.seg].durationMs
      this.seg++
    }
    const s = segments[this.seg]
    const within = a - this.segStartArea
    const k = (s.toRps - s.fromRps) / s.durationMs // rps per ms
    // Solve fromRps·x + k·x²/2 = within·1000 (x in ms); this form of the root holds for rising,
    // falling and flat rates alike and does not cancel when k is tiny.
    const b = s.fromRps
    const disc = Math.max(0, b * b + 2 * k * within * 1000)
    const denom = b + Math.sqrt(disc)
    const x = denom > 0 ? (2 * within * 1000) / denom : 0
    return this.segStartMs + Math.min(s.durationMs, x)
  }
}

function area(s: RateSegment): number {
  return ((s.fromRps + s.toRps) / 2) * (s.durationMs / 1000)
}
