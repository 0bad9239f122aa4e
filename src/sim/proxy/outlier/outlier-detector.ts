// Outlier detection with Envoy's semantics: a per-endpoint monitor counts consecutive
// 5xx and consecutive gateway errors; reaching a threshold ejects the endpoint at
// once, for baseEjectionTime × (times ejected). A timer ticks every `interval`:
// it returns endpoints whose time is up and lets endpoints that stayed in over a
// whole interval work their multiplier back down.
//
//   outcome layer ─record(id, outcome)─▶ OutlierDetector ─isEjected(id)─▶ balancer's filter
//                                            │ onChange ─▶ the instance manager's record, the event log
//                                      clock.setTimer(interval) ─▶ tick()
//
// It stays beside the proxy stack, not in it: the data path only records outcomes
// and asks isEjected().
import type {OutlierDetectionConfig} from '../../config/types.js'
import type {Clock, Timer} from '../../time/clock.js'

export type OutlierOutcome = 'success' | '5xx' | 'gateway-error' | 'local-failure'
export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-errors'

/**
 * What the detector decided about an endpoint. `forgotten`: it stopped watching one that was
 * ejected (the endpoint left the destination, or detection was turned off), so whoever
 * keeps a record of ejections drops it; it is no return to traffic.
 */
export type OutlierEvent =
  | {id: string; kind: 'ejected'; reason: EjectionReason; sinceMs: number; untilMs: number; times: number}
  | {id: string; kind: 'returned'; reason: EjectionReason}
  | {id: string; kind: 'forgotten'}

export interface Ejection {
  id: string
  sinceMs: number
  untilMs: number
  /** The ejection multiplier: this ejection lasts baseEjectionTime × times. */
  times: number
  reason: EjectionReason
}

/** Envoy's default max_ejection_time: however often an endpoint is ejected, it is out at most this long (or base, if longer). */
export const MAX_EJECTION_TIME_MS = 300_000

interface Monitor {
  consecutive5xx: number
  consecutiveGateway: number
  ejected: boolean
  sinceMs: number
  untilMs: number
  /** Ejection multiplier; +1 per ejection, -1 per interval spent in (Envoy). */
  times: number
  reason: EjectionReason
  /** When it last came back (or joined); the multiplier only decays after a full interval in. */
  inSinceMs: number
}

export class OutlierDetector {
  private readonly monitors = new Map<string, Monitor>()
  private ejectedCount = 0
  private timer: Timer | undefined
  private readonly intervalMs: number
  /** Ejections refused because maxEjectionPercent was reached (for `mesh stat`). */
  overflowed = 0

  constructor(
    private config: OutlierDetectionConfig,
    private readonly clock: Clock,
    private readonly onChange?: (e: OutlierEvent) => void,
  ) {
    // Envoy's default interval, should a config ever carry 0.
    this.intervalMs = config.intervalMs > 0 ? config.intervalMs : 10_000
    this.arm()
  }

  /** Apply a new policy (mesh apply); counters and current ejections are kept. */
  setConfig(config: OutlierDetectionConfig): void {
    this.config = config
  }

  /** The destination's endpoints; monitors of endpoints that left are forgotten. */
  setEndpoints(ids: Iterable<string>): void {
    const keep = new Set(ids)
    for (const [id, m] of this.monitors) {
      if (keep.has(id)) continue
      this.monitors.delete(id)
      if (!m.ejected) continue
      this.ejectedCount--
      this.onChange?.({id, kind: 'forgotten'})
    }
    const now = this.clock.now()
    for (const id of keep) {
      if (!this.monitors.has(id)) {
        this.monitors.set(id, {
          consecutive5xx: 0,
          consecutiveGateway: 0,
          ejected: false,
          sinceMs: 0,
          untilMs: 0,
          times: 0,
          reason: 'consecutive-5xx',
          inSinceMs: now,
        })
      }
    }
  }

  /** How many endpoints it monitors: the destination's current ones. */
  tracked(): number {
    return this.monitors.size
  }

  /**
   * One attempt's outcome. A gateway error (502/503/504) also counts as a 5xx; a
   * local failure (connect refused, reset, timeout) counts as a gateway error, as
   * Envoy does without split_external_local_origin_errors. Unknown ids are ignored.
   */
  record(id: string, outcome: OutlierOutcome): void {
    const m = this.monitors.get(id)
    // While ejected nothing counts; the counters restart when it returns.
    if (m === undefined || m.ejected) return
    if (outcome === 'success') {
      m.consecutive5xx = 0
      m.consecutiveGateway = 0
      return
    }
    const {consecutive5xxErrors, consecutiveGatewayErrors} = this.config
    if (outcome === '5xx') {
      m.consecutiveGateway = 0
    } else if (++m.consecutiveGateway === consecutiveGatewayErrors) {
      // Envoy resets the counter that fired whether or not the ejection was allowed,
      // so a capped endpoint needs a fresh run of errors to try again.
      m.consecutiveGateway = 0
      if (this.eject(id, m, 'consecutive-gateway-errors')) return
    }
    if (++m.consecutive5xx === consecutive5xxErrors) {
      m.consecutive5xx = 0
      this.eject(id, m, 'consecutive-5xx')
    }
  }

  isEjected(id: string): boolean {
    return this.monitors.get(id)?.ejected ?? false
  }

  ejectedCountNow(): number {
    return this.ejectedCount
  }

  ejections(): Ejection[] {
    const out: Ejection[] = []
    for (const [id, m] of this.monitors) {
      if (m.ejected) out.push({id, sinceMs: m.sinceMs, untilMs: m.untilMs, times: m.times, reason: m.reason})
    }
    return out
  }

  /** The current multiplier of `id` (0 when never ejected or fully recovered). */
  timesEjected(id: string): number {
    return this.monitors.get(id)?.times ?? 0
  }

  close(): void {
    this.timer?.cancel()
    this.timer = undefined
    for (const [id, m] of this.monitors) if (m.ejected) this.onChange?.({id, kind: 'forgotten'})
  }

  private eject(id: string, m: Monitor, reason: EjectionReason): boolean {
    // maxEjectionPercent counts the endpoint about to go; at least one may always be
    // ejected (Envoy's always_eject_one_host), else 10% of 3 endpoints could eject none.
    const total = this.monitors.size
    const afterPercent = (100 * (this.ejectedCount + 1)) / total
    if (afterPercent > this.config.maxEjectionPercent && this.ejectedCount > 0) {
      this.overflowed++
      return false
    }
    const now = this.clock.now()
    m.ejected = true
    m.times++
    m.reason = reason
    m.sinceMs = now
    const base = this.config.baseEjectionTimeMs
    m.untilMs = now + Math.min(base * m.times, Math.max(base, MAX_EJECTION_TIME_MS))
    m.consecutive5xx = 0
    m.consecutiveGateway = 0
    this.ejectedCount++
    this.onChange?.({id, kind: 'ejected', reason, sinceMs: now, untilMs: m.untilMs, times: m.times})
    return true
  }

  private arm(): void {
    this.timer = this.clock.setTimer(this.intervalMs, () => {
      this.tick()
      if (this.timer !== undefined) this.arm()
    })
  }

  /** One interval: return endpoints whose time is up; decay the multiplier of those that stayed in. */
  private tick(): void {
    const now = this.clock.now()
    for (const [id, m] of this.monitors) {
      if (m.ejected) {
        if (now < m.untilMs) continue
        m.ejected = false
        m.inSinceMs = now
        m.consecutive5xx = 0
        m.consecutiveGateway = 0
        this.ejectedCount--
        this.onChange?.({id, kind: 'returned', reason: m.reason})
      } else if (m.times > 0 && now - m.inSinceMs >= this.intervalMs) {
        m.times--
      }
    }
  }
}
