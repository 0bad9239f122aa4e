// A `scaling:` as the schema fills it in (Knative's defaults), with the short 6 s stable
// window the autoscaler tests run on: each test names only what it changes.
import type {ScalingConfig} from '../../src/sim/config/types.js'

export function scalingConfig(overrides: Partial<ScalingConfig> = {}): ScalingConfig {
  return {
    minScale: 0,
    maxScale: 10,
    initialScale: 1,
    target: 100,
    metric: 'concurrency',
    targetUtilization: 70,
    containerConcurrency: 0,
    windowMs: 6000,
    panicWindowPercentage: 10,
    panicThresholdPercentage: 200,
    scaleToZeroGracePeriodMs: 30_000,
    scaleDownDelayMs: 0,
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    activatorTimeoutMs: 60_000,
    queue: 100,
    ...overrides,
  }
}
