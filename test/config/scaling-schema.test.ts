// `scaling:` on a service or a version: Knative's names, defaults and limits, errors at the
// line, where a scaled version starts, and the warnings for what is not acted on yet.
import {Ajv} from 'ajv'
import {describe, expect, it} from 'vitest'
import {meshJsonSchema} from '../../src/sim/config/json-schema.js'
import {parsed, problems, yaml} from './helpers.js'

// One simulated service `s`; its first extra line is line 5, indented by 4.
const file = (...lines: string[]) => yaml('name: shop', 'services:', '  s:', '    simulate: {}', ...lines.map((l) => `    ${l}`))
const errors = (source: string) => problems(source).filter((p) => !p.includes('warning:'))

describe('scaling:', () => {
  it("fills in Knative's defaults, and reads durations and percentages", () => {
    expect(parsed(file('scaling: {}')).services[0].versions[0].scaling).toEqual({
      minScale: 0,
      maxScale: 10,
      initialScale: 1,
      target: 100,
      metric: 'concurrency',
      targetUtilization: 70,
      containerConcurrency: 0,
      windowMs: 60_000,
      panicWindowPercentage: 10,
      panicThresholdPercentage: 200,
      scaleToZeroGracePeriodMs: 30_000,
      scaleDownDelayMs: 0,
      maxScaleUpRate: 1000,
      maxScaleDownRate: 2,
      activatorTimeoutMs: 60_000,
      queue: 100,
    })
    expect(parsed(file('scaling: {metric: rps, target: 7.5, targetUtilization: 85%, window: 2m, panicWindowPercentage: "20%", scaleDownDelay: 15s}')).services[0].versions[0].scaling).toMatchObject({
      metric: 'rps',
      target: 7.5,
      targetUtilization: 85,
      windowMs: 120_000,
      panicWindowPercentage: 20,
      scaleDownDelayMs: 15_000,
    })
  })

  it('warns of nothing either acts on now: scale to zero (the autoscaler), containerConcurrency as a limit (the activator)', () => {
    expect(problems(file('scaling: {minScale: 1, maxScale: 3}'))).toEqual([])
    expect(problems(file('scaling: {maxScale: 3}'))).toEqual([])
    expect(problems(file('scaling: {minScale: 1, containerConcurrency: 200}'))).toEqual([])
  })

  it('starts a scaled version at initialScale, raised to minScale, within maxScale; none with both 0', () => {
    const replicas = (s: string) => parsed(file(`scaling: ${s}`)).services[0].versions[0].replicas
    expect(replicas('{minScale: 1, initialScale: 3}')).toBe(3)
    expect(replicas('{minScale: 4, initialScale: 1, maxScale: 6}')).toBe(4)
    expect(replicas('{minScale: 0, initialScale: 0}')).toBe(0)
    expect(replicas('{minScale: 2, initialScale: 0}')).toBe(2)
    expect(replicas('{minScale: 0}')).toBe(1)
  })

  it("is a version's default, a version may have its own, and a version's own replicas keeps it fixed", () => {
    const config = parsed(yaml('name: shop', 'services:', '  s:', '    simulate: {}', '    scaling: {maxScale: 3}', '    versions:', '      v1: {}', '      v2: {scaling: {maxScale: 4}}', '      v3: {replicas: 2}'))
    expect(config.services[0].versions.map((v) => [v.name, v.scaling?.maxScale, v.replicas])).toEqual([['v1', 3, 1], ['v2', 4, 1], ['v3', undefined, 2]])
  })

  it('refuses replicas beside scaling in one map, at scaling', () => {
    expect(errors(file('replicas: 2', 'scaling: {maxScale: 3}'))).toEqual([
      'mesh.yaml:6:5 services.s.scaling: replicas and scaling both say how many instances to run; keep one (scaling.minScale is the floor of an autoscaled one)',
    ])
    expect(errors(yaml('name: shop', 'services:', '  s:', '    simulate: {}', '    versions:', '      v1: {replicas: 2, scaling: {}}'))).toEqual([
      'mesh.yaml:6:25 services.s.versions.v1.scaling: replicas and scaling both say how many instances to run; keep one (scaling.minScale is the floor of an autoscaled one)',
    ])
  })

  it('refuses minScale above maxScale, and initialScale above maxScale', () => {
    expect(errors(file('scaling: {minScale: 5, maxScale: 3}'))).toEqual(['mesh.yaml:5:25 services.s.scaling.minScale: minScale 5 is above maxScale 3; raise maxScale or lower minScale'])
    // maxScale left at its default 10: the error is at minScale, the key written.
    expect(errors(file('scaling:', '  minScale: 11'))).toEqual(['mesh.yaml:6:17 services.s.scaling.minScale: minScale 11 is above maxScale 10; raise maxScale or lower minScale'])
    expect(errors(file('scaling: {initialScale: 4, maxScale: 3}'))).toEqual(['mesh.yaml:5:29 services.s.scaling.initialScale: initialScale 4 is above maxScale 3'])
  })

  it('refuses a target of 0 and a negative containerConcurrency, saying why', () => {
    expect(errors(file('scaling: {target: 0}'))).toEqual([
      'mesh.yaml:5:23 services.s.scaling.target: expected a number above 0, got 0: the target is what one instance should carry; 0 would want infinitely many',
    ])
    expect(errors(file('scaling: {containerConcurrency: -1}'))).toEqual([
      'mesh.yaml:5:37 services.s.scaling.containerConcurrency: expected a whole number of requests from 0 (no limit) to 1000, got -1: a negative limit admits nothing; 0 means no limit',
    ])
    expect(errors(file('scaling: {containerConcurrency: 1.5}'))).toEqual([
      'mesh.yaml:5:37 services.s.scaling.containerConcurrency: expected a whole number of requests from 0 (no limit) to 1000, got 1.5',
    ])
  })

  it("refuses percentages outside Knative's ranges", () => {
    expect(errors(file('scaling: {targetUtilization: 0%, panicWindowPercentage: 150, panicThresholdPercentage: 100%}'))).toEqual([
      'mesh.yaml:5:34 services.s.scaling.targetUtilization: expected a percentage between 1% and 100%, like 70%, got "0%": the share of target an instance is scaled to carry (Knative: 1 to 100)',
      'mesh.yaml:5:61 services.s.scaling.panicWindowPercentage: expected a percentage between 1% and 100%, like 70%, got 150: the panic window is this share of window (Knative: 1 to 100)',
      'mesh.yaml:5:92 services.s.scaling.panicThresholdPercentage: expected a percentage between 110% and 1000%, like 110%, got "100%": panic starts when the panic window wants this share of the instances ready (Knative: 110 to 1000)',
    ])
    expect(errors(file('scaling: {targetUtilization: seventy}'))).toEqual([
      'mesh.yaml:5:34 services.s.scaling.targetUtilization: expected a percentage between 1% and 100%, like 70%, got "seventy"',
    ])
  })

  it("refuses a window under Knative's 6 s, a grace period under it, and rates of 1 or less", () => {
    expect(errors(file('scaling: {window: 5s, scaleToZeroGracePeriod: 1s, maxScaleUpRate: 1, maxScaleDownRate: 0.5}'))).toEqual([
      "mesh.yaml:5:23 services.s.scaling.window: \"5s\" is out of range: the stable window is between 6s and 1h (Knative's bounds)",
      "mesh.yaml:5:51 services.s.scaling.scaleToZeroGracePeriod: \"1s\" is out of range: the grace period is between 6s and 1h (Knative's bounds)",
      'mesh.yaml:5:71 services.s.scaling.maxScaleUpRate: expected a number above 1, got 1: a rate of 1 or less could never add an instance',
      'mesh.yaml:5:92 services.s.scaling.maxScaleDownRate: expected a number above 1, got 0.5: a rate of 1 or less could never remove an instance',
    ])
  })

  it('refuses unknown keys with a suggestion, as everywhere', () => {
    expect(errors(file('scaling: {maxReplicas: 3}')).join('\n')).toMatch(/^mesh\.yaml:5:15 services\.s\.scaling\.maxReplicas: /)
  })

  it('warns when target is above containerConcurrency: the autoscaler aims for the limit, as Knative', () => {
    expect(problems(file('scaling: {target: 10, containerConcurrency: 1}'))).toEqual([
      'mesh.yaml:5:23 services.s.scaling.target: warning: target 10 is above containerConcurrency 1: the autoscaler aims for 1 per instance',
    ])
  })
})

describe('scaling: in the JSON Schema editors get', () => {
  const validate = new Ajv({strict: true, allowUnionTypes: true}).compile(meshJsonSchema())
  const accepts = (scaling: unknown) => validate({name: 'x', services: {a: {simulate: {}, scaling}}})

  it('takes what the checker takes', () => {
    expect(accepts({minScale: 0, maxScale: 5, target: 0.5, metric: 'rps', targetUtilization: '70%', panicWindowPercentage: 10, window: '2m', maxScaleDownRate: 1.5})).toBe(true)
  })

  it.each([
    ['a target of 0', {target: 0}],
    ['a negative containerConcurrency', {containerConcurrency: -1}],
    ['a panic threshold under 110%', {panicThresholdPercentage: 100}],
    ['a utilization that is no percentage', {targetUtilization: 'seventy'}],
    ['a scale-up rate of 1', {maxScaleUpRate: 1}],
    ['an unknown metric', {metric: 'cpu'}],
    ['an unknown key', {maxReplicas: 3}],
  ])('refuses %s, as the checker does', (_, scaling) => {
    expect(accepts(scaling)).toBe(false)
    const text = JSON.stringify({name: 'x', services: {a: {simulate: {}, scaling}}})
    expect(problems(text).filter((p) => !p.includes('warning:'))).not.toEqual([])
  })
})
