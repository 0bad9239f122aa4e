// A hand-made SimResult: two services over three steps of virtual time, one of them
// overloaded, for the renderers and exporters (the engine's own tests build real ones).
import type {SimPoint, SimResult, SimServiceStats} from '../../src/sim/virtual/sim-result.js'

export function serviceStats(service: string, over: Partial<SimServiceStats> = {}): SimServiceStats {
  return {
    service,
    requests: 3000,
    successRate: 0.995,
    actualRequests: 3100,
    actualSuccessRate: 0.962,
    meanMs: 12.5,
    p50: 10,
    p95: 30,
    p99: 48.25,
    p999: 120,
    retries: 100,
    retriesBudgetDenied: 4,
    ejections: 2,
    breakerRefusals: 0,
    rateLimited: 0,
    queueMsMean: 0.5,
    serviceMsMean: 12,
    slots: 4,
    utilisation: 0.42,
    meanInFlight: 12.5,
    littleLambdaW: 12.5,
    ...over,
  }
}

export function point(atMs: number, service: string, over: Partial<SimPoint> = {}): SimPoint {
  return {atMs, service, rps: 1000, successRate: 1, p99: 40, queueDepth: 0, ...over}
}

export function simResult(over: Partial<SimResult> = {}): SimResult {
  return {
    seed: 7,
    durationMs: 3000,
    ingressRequests: 3000,
    hopRequests: 6200,
    services: [serviceStats('frontend'), serviceStats('payments', {successRate: 0.9, actualSuccessRate: 0.8, utilisation: 1.25, queueMsMean: 850, p99: 2400})],
    errorsByCause: {'5xx': 15, UO: 3},
    series: [
      point(0, 'frontend'),
      point(0, 'payments', {queueDepth: 3}),
      point(1000, 'frontend', {rps: 1100}),
      point(1000, 'payments', {successRate: 0.5, p99: 2400, queueDepth: 40}),
      point(2000, 'frontend', {rps: 900}),
      point(2000, 'payments', {successRate: 0.9, p99: 900, queueDepth: 80}),
    ],
    unstable: [{service: 'payments', utilisation: 1.25}],
    ...over,
  }
}
