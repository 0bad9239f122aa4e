// A service's deploy: block as the defaults of mesh canary / mesh rollout: a flag given wins,
// the block fills the rest, the flags' own defaults what neither says.
import {describe, expect, test} from 'vitest'
import type {DeployConfig} from '../../src/sim/config/types.js'
import {declaredDeployPlan, rolloutStrategy, withDeployDefaults} from '../../src/sim/deploy/deploy-defaults.js'
import {parseDeployPlan} from '../../src/sim/deploy/deploy-flags.js'
import {parsed, yaml} from '../config/helpers.js'

const canaryBlock: DeployConfig = {
  strategy: 'canary',
  steps: [10, 50],
  intervalMs: 30_000,
  maxErrorRate: 0.02,
  maxP99Ms: 1500,
  failureThreshold: 3,
  minRequests: 5,
  match: {name: 'x-canary', value: 'true'},
  mirror: true,
  check: 'npm run e2e',
  progressDeadlineMs: 120_000,
}

describe('mesh canary with a deploy: block', () => {
  test('takes every value of the block when no flag is given', () => {
    const plan = parseDeployPlan('api', 'canary', withDeployDefaults({to: 'v2'}, canaryBlock, 'canary'))
    expect(plan.canary).toEqual({
      steps: [10, 50, 100],
      intervalMs: 30_000,
      maxErrorRate: 0.02,
      maxP99Ms: 1500,
      compareToPrimary: false,
      failureThreshold: 3,
      match: {name: 'x-canary', value: 'true'},
      mirror: true,
      minRequests: 5,
      loadRps: undefined,
    })
    expect(plan.check).toBe('npm run e2e')
    expect(plan.progressDeadlineMs).toBe(120_000)
  })

  test('a flag given on the command line wins, --no-mirror included', () => {
    const plan = parseDeployPlan('api', 'canary', withDeployDefaults({to: 'v2', steps: '20,100', maxErrorRate: '5%', mirror: false, failureThreshold: 1}, canaryBlock, 'canary'))
    expect(plan.canary).toMatchObject({steps: [20, 100], maxErrorRate: 0.05, mirror: undefined, failureThreshold: 1, intervalMs: 30_000, maxP99Ms: 1500})
  })

  test("no block: the flags' own defaults", () => {
    expect(parseDeployPlan('api', 'canary', withDeployDefaults({to: 'v2'}, undefined, 'canary'))).toEqual(parseDeployPlan('api', 'canary', {to: 'v2'}))
  })

  test("a block of another strategy lends only what every deploy shares (check, progressDeadline)", () => {
    const blueGreen: DeployConfig = {strategy: 'blue-green', smoke: 'GET /healthz', keepMs: 5000, check: 'make e2e'}
    const plan = parseDeployPlan('api', 'canary', withDeployDefaults({to: 'v2'}, blueGreen, 'canary'))
    expect(plan.canary?.steps).toEqual([5, 25, 50, 100])
    expect(plan.check).toBe('make e2e')
    // And a rolling deploy takes no check (it would be refused).
    expect(parseDeployPlan('api', 'rolling', withDeployDefaults({to: 'v2'}, blueGreen, 'rolling')).check).toBeUndefined()
  })
})

test("mesh restart: the block's progressDeadline, whatever its strategy, under --progress-deadline", () => {
  const block: DeployConfig = {strategy: 'canary', progressDeadlineMs: 90_000, steps: [10]}
  expect(withDeployDefaults({to: '', progressDeadline: undefined}, block, 'rolling').progressDeadline).toBe('90s')
  expect(withDeployDefaults({to: '', progressDeadline: '5s'}, block, 'rolling').progressDeadline).toBe('5s')
})

describe('mesh rollout with a deploy: block', () => {
  test("its strategy when it is one rollout makes, the block's smoke and keep; --strategy wins", () => {
    const block: DeployConfig = {strategy: 'blue-green', smoke: 'GET /healthz', keepMs: 5000}
    expect(rolloutStrategy(undefined, block)).toBe('blue-green')
    expect(rolloutStrategy('rolling', block)).toBe('rolling')
    expect(rolloutStrategy(undefined, canaryBlock)).toBe('rolling')
    expect(rolloutStrategy(undefined, undefined)).toBe('rolling')
    expect(parseDeployPlan('api', 'blue-green', withDeployDefaults({to: 'v2'}, block, 'blue-green')).blueGreen).toEqual({smoke: {method: 'GET', path: '/healthz'}, keepMs: 5000})
    expect(parseDeployPlan('api', 'rolling', withDeployDefaults({to: 'v2', maxSurge: 3}, {strategy: 'rolling', maxSurge: 2, maxUnavailable: 1}, 'rolling')).rolling).toEqual({maxSurge: 3, maxUnavailable: 1})
  })
})

test('declaredDeployPlan: what mesh.yaml says a deploy of the service is, from the file, every default applied', () => {
  const config = parsed(yaml('name: shop', 'services:', '  s:', '    simulate: {}', '    deploy: {steps: [10, 50], maxP99: 300ms}', '  t:', '    simulate: {}'))
  expect(declaredDeployPlan(config.services[0])?.canary).toMatchObject({steps: [10, 50, 100], maxP99Ms: 300, intervalMs: 10_000, maxErrorRate: 0.01, failureThreshold: 2})
  expect(declaredDeployPlan(config.services[1])).toBeUndefined()
})
