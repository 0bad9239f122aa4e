// `scaling:` on a service or a version: Knative Serving's autoscaling knobs, by their
// names (the autoscaling.knative.dev/* annotations in camelCase) and with their
// defaults and limits, so a mesh.yaml reads like the Service it will become:
//
//   scaling: {minScale: 0, maxScale: 5, target: 10, targetUtilization: 70%, scaleDownDelay: 30s}
//
// The daemon's Autoscaler (scaling/autoscaler.ts) acts on it, and the sidecar's activator (proxy/layers/activator.ts) on its limits.
import {type At, type Checker, checker, def, describeNode, duration, enumOf, int, obj, opt, refine} from './checker.js'
import {reservedConcurrency, reservedFits} from './functions-schema.js'
import type {ScalingConfig} from './types.js'

/** Knative's autoscaling.WindowMin and WindowMax (the stable window's bounds; the grace period's minimum). */
const WINDOW_MIN_MS = 6_000
const WINDOW_MAX_MS = 3_600_000

/** One machine's worth, as `replicas:` (mesh-schema's MAX_REPLICAS). */
const MAX_SCALE = 1000

/** A number in [min, max] (or above `above`), with a reason when it is not. */
function number(o: {min?: number; above?: number; max?: number; integer?: boolean; expected: string; why: (v: number) => string | undefined}): Checker<number> {
  return checker(
    o.expected,
    (at) => {
      const v = at.value
      if (at.kind !== 'scalar' || typeof v !== 'number' || !Number.isFinite(v) || (o.integer && !Number.isInteger(v))) return at.expected(o.expected)
      const wrong = (o.min !== undefined && v < o.min) || (o.above !== undefined && v <= o.above) || (o.max !== undefined && v > o.max)
      return wrong ? at.error(`expected ${o.expected}, got ${describeNode(at.node)}${o.why(v) ? `: ${o.why(v)}` : ''}`) : v
    },
    {
      description: o.expected,
      type: o.integer ? 'integer' : 'number',
      ...(o.min !== undefined ? {minimum: o.min} : {}),
      ...(o.above !== undefined ? {exclusiveMinimum: o.above} : {}),
      ...(o.max !== undefined ? {maximum: o.max} : {}),
    },
  )
}

/** `70%` or `70`, as Knative's *-percentage annotations (a bare number there is percent too). */
function percentage(min: number, max: number, why: string): Checker<number> {
  const expected = `a percentage between ${min}% and ${max}%, like ${Math.min(max, Math.max(min, 70))}%`
  return checker(
    expected,
    (at) => {
      const v = at.value
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+(\.\d+)?\s*%\s*$/.test(v) ? Number.parseFloat(v) : undefined
      if (at.kind !== 'scalar' || n === undefined) return at.expected(expected)
      return n >= min && n <= max ? n : at.error(`expected ${expected}, got ${describeNode(at.node)}: ${why}`)
    },
    {description: expected, anyOf: [{type: 'number', minimum: min, maximum: max}, {type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*%\\s*$'}]},
  )
}

/** A duration within Knative's bounds, saying whose bounds they are. */
function boundedDuration(minMs: number, maxMs: number, why: string): Checker<number> {
  return refine(duration(), (ms, at) => (ms >= minMs && ms <= maxMs ? ms : at.error(`${describeNode(at.node)} is out of range: ${why}`)))
}

const fields = obj({
  minScale: def(int({min: 0, max: MAX_SCALE}), 0),
  maxScale: def(int({min: 1, max: MAX_SCALE, expected: `an integer between 1 and ${MAX_SCALE} (Knative's 0 for "no limit" is not one machine)`}), 10),
  initialScale: def(int({min: 0, max: MAX_SCALE}), 1),
  target: def(number({above: 0, expected: 'a number above 0', why: () => 'the target is what one instance should carry; 0 would want infinitely many'}), 100),
  metric: def(enumOf(['concurrency', 'rps'] as const), 'concurrency'),
  targetUtilization: def(percentage(1, 100, 'the share of target an instance is scaled to carry (Knative: 1 to 100)'), 70),
  containerConcurrency: def(
    number({min: 0, max: MAX_SCALE, integer: true, expected: `a whole number of requests from 0 (no limit) to ${MAX_SCALE}`, why: (v) => (v < 0 ? 'a negative limit admits nothing; 0 means no limit' : undefined)}),
    0,
  ),
  window: def(boundedDuration(WINDOW_MIN_MS, WINDOW_MAX_MS, 'the stable window is between 6s and 1h (Knative\'s bounds)'), 60_000),
  panicWindowPercentage: def(percentage(1, 100, 'the panic window is this share of window (Knative: 1 to 100)'), 10),
  panicThresholdPercentage: def(percentage(110, 1000, 'panic starts when the panic window wants this share of the instances ready (Knative: 110 to 1000)'), 200),
  scaleToZeroGracePeriod: def(boundedDuration(WINDOW_MIN_MS, WINDOW_MAX_MS, 'the grace period is between 6s and 1h (Knative\'s bounds)'), 30_000),
  scaleDownDelay: def(boundedDuration(0, WINDOW_MAX_MS, 'the scale-down delay is between 0s and 1h (Knative\'s bounds)'), 0),
  maxScaleUpRate: def(number({above: 1, expected: 'a number above 1', why: () => 'a rate of 1 or less could never add an instance'}), 1000),
  maxScaleDownRate: def(number({above: 1, expected: 'a number above 1', why: () => 'a rate of 1 or less could never remove an instance'}), 2),
  activatorTimeout: def(boundedDuration(1, WINDOW_MAX_MS, 'the activator holds a request between 1ms and 1h'), 60_000),
  queue: def(int({min: 0, max: 1_000_000}), 100),
  // Lambda's, beside Knative's knobs: checked against functions.accountConcurrency in functions-schema.ts.
  reservedConcurrency: opt(reservedConcurrency),
})

export const scaling: Checker<ScalingConfig> = refine(fields, (s, at): ScalingConfig | undefined => {
  let ok = true
  const fail = (key: string, message: string) => {
    ;(at.child(key) ?? at).error(message)
    ok = false
  }
  if (s.minScale > s.maxScale) fail(at.child('minScale') ? 'minScale' : 'maxScale', `minScale ${s.minScale} is above maxScale ${s.maxScale}; raise maxScale or lower minScale`)
  if (s.initialScale > s.maxScale) fail('initialScale', `initialScale ${s.initialScale} is above maxScale ${s.maxScale}`)
  if (!ok) return undefined
  if (s.metric === 'concurrency' && s.containerConcurrency > 0 && s.target > s.containerConcurrency) {
    // Knative's ResolveMetricTarget does the same: an instance is never asked for more than it admits.
    ;(at.child('target') ?? at).warn(`target ${s.target} is above containerConcurrency ${s.containerConcurrency}: the autoscaler aims for ${s.containerConcurrency} per instance`)
  }
  const out: ScalingConfig = {
    minScale: s.minScale,
    maxScale: s.maxScale,
    initialScale: s.initialScale,
    target: s.target,
    metric: s.metric,
    targetUtilization: s.targetUtilization,
    containerConcurrency: s.containerConcurrency,
    windowMs: s.window,
    panicWindowPercentage: s.panicWindowPercentage,
    panicThresholdPercentage: s.panicThresholdPercentage,
    scaleToZeroGracePeriodMs: s.scaleToZeroGracePeriod,
    scaleDownDelayMs: s.scaleDownDelay,
    maxScaleUpRate: s.maxScaleUpRate,
    maxScaleDownRate: s.maxScaleDownRate,
    activatorTimeoutMs: s.activatorTimeout,
    queue: s.queue,
  }
  if (s.reservedConcurrency !== undefined) out.reservedConcurrency = s.reservedConcurrency
  reservedFits(out, at)
  return out
})

/**
 * A service's or a version's own keys: `replicas` and `scaling` each say how many
 * instances, so one map may hold only one. False when there is an error (reported at the key).
 */
export function scalingFits(_raw: {replicas?: number; scaling?: ScalingConfig}, at: At | undefined): boolean {
  const key = at?.child('scaling')
  if (!at || !key) return true
  if (at.child('replicas')) {
    key.errorAtKey('replicas and scaling both say how many instances to run; keep one (scaling.minScale is the floor of an autoscaled one)')
    return false
  }
  return true
}

/**
 * How many instances a scaled version starts with, in place of `replicas`: initialScale
 * raised to minScale (Knative starts at the larger), within maxScale. None only with both
 * 0 (Knative's initialScale 0): the first request starts one, through the activator.
 */
export function initialInstances(s: ScalingConfig): number {
  return Math.min(s.maxScale, Math.max(s.minScale, s.initialScale))
}
