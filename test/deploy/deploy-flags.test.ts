// `mesh rollout` / `mesh canary` flags → DeployPlan: the defaults, and the error a
// user meets for each bad value (MESH_BAD_FLAG, exit 2), naming the flag and the value.
import {describe, expect, test} from 'vitest'
import {parseDeployPlan} from '../../src/sim/deploy/deploy-flags.js'
import {MeshError} from '../../src/sim/errors.js'

/** The MeshError a call throws; fails the test when it does not throw one. */
function badFlag(fn: () => unknown): MeshError {
  let thrown: unknown
  try {
    fn()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(MeshError)
  expect((thrown as MeshError).code).toBe('MESH_BAD_FLAG')
  return thrown as MeshError
}

describe('defaults', () => {
  test('rolling: maxSurge 1, maxUnavailable 0, 60s progress deadline, no overrides', () => {
    expect(parseDeployPlan('api', 'rolling', {to: 'v2'})).toEqual({
      service: 'api',
      to: 'v2',
      strategy: 'rolling',
      overrides: undefined,
      rolling: {maxSurge: 1, maxUnavailable: 0},
      progressDeadlineMs: 60_000,
    })
  })

  test('blue-green: keep blue 60s, no smoke check', () => {
    expect(parseDeployPlan('api', 'blue-green', {to: 'v2'}).blueGreen).toEqual({smoke: undefined, keepMs: 60_000})
  })

  test('canary: 5,25,50,100 every 10s, 1% errors, threshold 2, 20 requests, no p99, no match, no load', () => {
    expect(parseDeployPlan('api', 'canary', {to: 'v2'}).canary).toEqual({
      steps: [5, 25, 50, 100],
      intervalMs: 10_000,
      maxErrorRate: 0.01,
      maxP99Ms: undefined,
      compareToPrimary: false,
      failureThreshold: 2,
      match: undefined,
      minRequests: 20,
      loadRps: undefined,
    })
  })

  test('only the chosen strategy gets options', () => {
    const plan = parseDeployPlan('api', 'canary', {to: 'v2', maxSurge: 3, keep: '1s'})
    expect(plan.rolling).toBeUndefined()
    expect(plan.blueGreen).toBeUndefined()
  })
})

describe('values', () => {
  test('canary flags as written on the command line', () => {
    const plan = parseDeployPlan('api', 'canary', {
      to: 'v2',
      steps: '20, 50,100',
      interval: '1s',
      maxErrorRate: '5%',
      maxP99: '300ms',
      compareToPrimary: true,
      failureThreshold: 3,
      match: 'X-Canary=true',
      load: 100,
      minRequests: 10,
      progressDeadline: '1m30s',
    })
    expect(plan.canary).toEqual({
      steps: [20, 50, 100],
      intervalMs: 1000,
      maxErrorRate: 0.05,
      maxP99Ms: 300,
      compareToPrimary: true,
      failureThreshold: 3,
      match: {name: 'x-canary', value: 'true'},
      minRequests: 10,
      loadRps: 100,
    })
    expect(plan.progressDeadlineMs).toBe(90_000)
  })

  test('--steps not ending at 100 get 100 appended: the last step is always full traffic', () => {
    expect(parseDeployPlan('api', 'canary', {to: 'v2', steps: '10,50'}).canary!.steps).toEqual([10, 50, 100])
  })

  test('--max-error-rate as a ratio', () => {
    expect(parseDeployPlan('api', 'canary', {to: 'v2', maxErrorRate: '0.2'}).canary!.maxErrorRate).toBe(0.2)
  })

  test('a header value may hold "="', () => {
    expect(parseDeployPlan('api', 'canary', {to: 'v2', match: 'cookie=a=b'}).canary!.match).toEqual({name: 'cookie', value: 'a=b'})
  })

  test('--check: canary and blue-green only', () => {
    expect(parseDeployPlan('api', 'canary', {to: 'v2', check: 'npm run e2e'}).check).toBe('npm run e2e')
    expect(parseDeployPlan('api', 'blue-green', {to: 'v2', check: './smoke.sh'}).check).toBe('./smoke.sh')
    expect(parseDeployPlan('api', 'canary', {to: 'v2'})).not.toHaveProperty('check')
    expect(badFlag(() => parseDeployPlan('api', 'rolling', {to: 'v2', check: 'x'})).message).toBe('--check runs before traffic moves to the new version: use it with --strategy blue-green or mesh canary')
    expect(badFlag(() => parseDeployPlan('api', 'canary', {to: 'v2', check: ' '})).message).toBe("--check: expected a shell command, like 'npm run e2e'")
  })

  test('--smoke and --keep', () => {
    expect(parseDeployPlan('api', 'blue-green', {to: 'v2', smoke: ' POST /ready ', keep: '1s'}).blueGreen).toEqual({
      smoke: {method: 'POST', path: '/ready'},
      keepMs: 1000,
    })
  })

  test('rolling surge and unavailability', () => {
    expect(parseDeployPlan('api', 'rolling', {to: 'v2', maxSurge: 0, maxUnavailable: 1}).rolling).toEqual({maxSurge: 0, maxUnavailable: 1})
  })

  test('--command, --env and --set become the version overrides', () => {
    expect(
      parseDeployPlan('api', 'rolling', {to: 'v3', command: 'node v3.js', env: ['A=1', 'URL=http://x?a=b'], set: ['simulate.errorRate=0.2']}).overrides,
    ).toEqual({command: 'node v3.js', env: {A: '1', URL: 'http://x?a=b'}, set: {'simulate.errorRate': '0.2'}})
  })
})

describe('bad input', () => {
  test.each([
    ['50,25', 'not increasing'],
    ['5,5,100', 'repeated'],
    ['0,50', 'zero'],
    ['5,150', 'over 100'],
    ['5,abc', 'not a number'],
    ['5,,50', 'empty item'],
    ['', 'empty'],
    ['-5,50', 'negative'],
  ])('--steps %j (%s)', (steps) => {
    const e = badFlag(() => parseDeployPlan('api', 'canary', {to: 'v2', steps}))
    expect(e.message).toBe(`--steps: expected increasing percentages in 1..100 like 5,25,50,100, got "${steps}"`)
  })

  test.each(['healthz', '/healthz', 'GET', 'GET healthz', 'GET /a /b'])('--smoke %j', (smoke) => {
    const e = badFlag(() => parseDeployPlan('api', 'blue-green', {to: 'v2', smoke}))
    expect(e.message).toBe(`--smoke: expected 'METHOD /path' like 'GET /healthz', got "${smoke}"`)
  })

  test.each(['x-canary', '=true', 'x-canary:true'])('--match %j', (match) => {
    const e = badFlag(() => parseDeployPlan('api', 'canary', {to: 'v2', match}))
    expect(e.message).toBe(`--match: expected header=value like x-canary=true, got "${match}"`)
  })

  test.each([
    ['--interval', {interval: 'ten'}, 'ten'],
    ['--interval', {interval: '10 s'}, '10 s'],
    ['--max-p99', {maxP99: 'fast'}, 'fast'],
    ['--progress-deadline', {progressDeadline: '1d'}, '1d'],
  ])('%s duration', (flag, f, value) => {
    const e = badFlag(() => parseDeployPlan('api', 'canary', {to: 'v2', ...f}))
    expect(e.message).toBe(`${flag}: expected a duration like 10s or 300ms, got "${value}"`)
  })

  test('--keep duration', () => {
    expect(badFlag(() => parseDeployPlan('api', 'blue-green', {to: 'v2', keep: 'forever'})).message).toBe(
      '--keep: expected a duration like 10s or 300ms, got "forever"',
    )
  })

  test.each(['150%', '5', 'abc', '-1%'])('--max-error-rate %j', (maxErrorRate) => {
    const e = badFlag(() => parseDeployPlan('api', 'canary', {to: 'v2', maxErrorRate}))
    expect(e.message).toBe(`--max-error-rate: expected a percentage like 1% (or a ratio 0..1), got "${maxErrorRate}"`)
  })

  test.each([
    [0, 0],
    [-1, 1],
    [1, -1],
  ])('--max-surge %i --max-unavailable %i', (maxSurge, maxUnavailable) => {
    const e = badFlag(() => parseDeployPlan('api', 'rolling', {to: 'v2', maxSurge, maxUnavailable}))
    expect(e.message).toMatch(/--max-surge and --max-unavailable/)
  })

  test.each([
    ['--env', {env: ['NOEQUALS']}, 'NOEQUALS'],
    ['--env', {env: ['=x']}, '=x'],
    ['--set', {set: ['simulate.errorRate']}, 'simulate.errorRate'],
  ])('%s without KEY=VALUE', (flag, f, item) => {
    const e = badFlag(() => parseDeployPlan('api', 'rolling', {to: 'v2', ...f}))
    expect(e.message).toBe(`${flag}: expected KEY=VALUE, got "${item}"`)
  })
})
