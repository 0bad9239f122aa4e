import {describe, expect, it} from 'vitest'
import type {ServiceConfig} from '../../src/sim/config/types.js'
import {resolveVersion} from '../../src/sim/deploy/version-overrides.js'

const exponential: ServiceConfig = {
  name: 'api',
  dependsOn: [],
  health: {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3},
  policy: {loadBalancer: {kind: 'round-robin'}, routes: []},
  stopGracePeriodMs: 10_000,
  versions: [
    {
      name: 'v1',
      replicas: 1,
      env: {},
      workload: {
        kind: 'simulate',
        simulate: {
          latency: {p50Ms: 20 * Math.LN2, p99Ms: 20 * Math.log(100), distribution: 'exponential', meanMs: 20},
          errorRate: 0,
          errorStatus: 500,
          calls: [],
          callMode: 'sequential',
          responseBytes: 256,
          concurrency: 0,
          seed: 1,
        },
      },
    },
  ],
}

describe('--set simulate.latency.*', () => {
  it('makes a percentile set by hand a log-normal, so a distribution\'s own mean does not silently win over it', () => {
    const v2 = resolveVersion(exponential, 'v2', 'v1', {set: {'simulate.latency.p50': '50ms'}})
    expect(v2.workload.kind === 'simulate' && v2.workload.simulate.latency).toEqual({p50Ms: 50, p99Ms: 20 * Math.log(100)})
    const v3 = resolveVersion(exponential, 'v3', 'v1', {set: {'simulate.latency.p99': '300ms'}})
    expect(v3.workload.kind === 'simulate' && v3.workload.simulate.latency).toEqual({p50Ms: 20 * Math.LN2, p99Ms: 300})
    // The base version is left as it was.
    expect(exponential.versions[0].workload.kind === 'simulate' && exponential.versions[0].workload.simulate.latency.distribution).toBe('exponential')
  })
})
