// `deploy:` on a service: mesh canary / mesh rollout's flags as mesh.yaml keys, only the keys
// written kept, and a wrong value said at its line and column.
import {Ajv} from 'ajv'
import {describe, expect, it} from 'vitest'
import {meshJsonSchema} from '../../src/sim/config/json-schema.js'
import {parsed, problems, yaml} from './helpers.js'

// One simulated service `s`; its first extra line is line 5, indented by 4.
const file = (...lines: string[]) => yaml('name: shop', 'services:', '  s:', '    simulate: {}', ...lines.map((l) => `    ${l}`))
const errors = (source: string) => problems(source).filter((p) => !p.includes('warning:'))
const deployOf = (source: string) => parsed(source).services[0].deploy

describe('deploy:', () => {
  it('reads the canary flags by their camelCase names, keeping only what is written', () => {
    expect(deployOf(file('deploy: {steps: [10, 50, 100], interval: 30s, maxErrorRate: 2%, maxP99: 300ms, failureThreshold: 3, minRequests: 5, match: {X-Canary: "true"}, mirror: true, compareToPrimary: true, check: npm run e2e, progressDeadline: 2m}'))).toEqual({
      strategy: 'canary',
      steps: [10, 50, 100],
      intervalMs: 30_000,
      maxErrorRate: 0.02,
      maxP99Ms: 300,
      failureThreshold: 3,
      minRequests: 5,
      match: {name: 'x-canary', value: 'true'},
      mirror: true,
      compareToPrimary: true,
      check: 'npm run e2e',
      progressDeadlineMs: 120_000,
    })
    expect(deployOf(file('deploy: {}'))).toEqual({strategy: 'canary'})
    expect(deployOf(file('replicas: 1'))).toBeUndefined()
    expect(deployOf(file('deploy: {strategy: blue-green, smoke: GET /healthz, keep: 2m}'))).toEqual({strategy: 'blue-green', smoke: 'GET /healthz', keepMs: 120_000})
    expect(deployOf(file('deploy: {strategy: rolling, maxSurge: 2, maxUnavailable: 1}'))).toEqual({strategy: 'rolling', maxSurge: 2, maxUnavailable: 1})
  })

  it('says where a bad value is, file:line:column', () => {
    expect(errors(file('deploy: {steps: [50, 25]}'))).toEqual(['mesh.yaml:5:21 services.s.deploy.steps: expected increasing percentages like [5, 25, 50, 100], got [50, 25]'])
    expect(errors(file('deploy:', '  steps: [10, 150]'))).toEqual(['mesh.yaml:6:19 services.s.deploy.steps[1]: expected a percentage between 1 and 100, got 150'])
    expect(errors(file('deploy: {interval: 10}'))).toEqual([expect.stringMatching(/^mesh\.yaml:5:24 services\.s\.deploy\.interval: expected a positive duration like 300ms, 1s or 2m, got 10/)])
    expect(errors(file('deploy: {maxErrorRate: lots}'))).toEqual(['mesh.yaml:5:28 services.s.deploy.maxErrorRate: expected a percentage like 1% (or a ratio between 0 and 1), got "lots"'])
    expect(errors(file('deploy: {strategy: canery}'))).toEqual(['mesh.yaml:5:24 services.s.deploy.strategy: expected one of canary, blue-green, rolling, got "canery"; did you mean "canary"?'])
    expect(errors(file('deploy: {stepz: [10]}'))).toEqual([expect.stringMatching(/^mesh\.yaml:5:14 services\.s\.deploy\.stepz: unknown key "stepz"; did you mean "steps"\?/)])
    expect(errors(file('deploy: {match: {a: "1", b: "2"}}'))).toEqual([expect.stringMatching(/^mesh\.yaml:5:21 services\.s\.deploy\.match: expected one header and its value/)])
  })

  it("refuses a key of another strategy than the deploy's, and a check on a rolling one", () => {
    expect(errors(file('deploy: {smoke: GET /healthz}'))).toEqual(['mesh.yaml:5:14 services.s.deploy.smoke: smoke is for strategy: blue-green; this deploy is canary (the default)'])
    expect(errors(file('deploy: {strategy: blue-green, steps: [10]}'))).toEqual(['mesh.yaml:5:36 services.s.deploy.steps: steps is for strategy: canary; this deploy is blue-green'])
    expect(errors(file('deploy: {strategy: rolling, check: make e2e}'))).toEqual([
      'mesh.yaml:5:33 services.s.deploy.check: check runs before traffic moves to the new version: rolling moves it instance by instance; use strategy: blue-green or canary',
    ])
    expect(errors(file('deploy: {strategy: rolling, maxSurge: 0, maxUnavailable: 0}'))).toHaveLength(1)
  })

  it('is in the JSON Schema editors get, which refuses what the checker refuses', () => {
    const validate = new Ajv({strict: true, allowUnionTypes: true}).compile(meshJsonSchema())
    const doc = (deploy: unknown) => ({name: 'x', services: {s: {simulate: {}, deploy}}})
    expect(validate(doc({strategy: 'canary', steps: [10, 50], interval: '30s', maxErrorRate: '1%', maxP99: '300ms', match: {'x-canary': 'true'}, mirror: true}))).toBe(true)
    expect(validate(doc({strategy: 'canery'}))).toBe(false)
    expect(validate(doc({interval: 10}))).toBe(false)
    expect(validate(doc({match: {a: '1', b: '2'}}))).toBe(false)
  })
})
