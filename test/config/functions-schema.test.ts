// `functions: {accountConcurrency}` and `scaling.reservedConcurrency`: Lambda's account
// limit and per-function reservation, their defaults, and the errors and warnings at the line.
import {Ajv} from 'ajv'
import {describe, expect, it} from 'vitest'
import {meshJsonSchema} from '../../src/sim/config/json-schema.js'
import {parsed, problems, yaml} from './helpers.js'

/** Scaled services that keep an instance warm (no scale-to-zero warning) unless they say otherwise. */
const mesh = (top: string[], ...services: Array<[string, string]>) =>
  yaml('name: fn', ...top, 'services:', ...services.flatMap(([name, scaling]) => [`  ${name}:`, '    simulate: {}', `    scaling: ${scaling}`]))
const errors = (source: string) => problems(source).filter((p) => !p.includes('warning:'))
const warnings = (source: string) => problems(source).filter((p) => p.includes('warning:'))

describe('functions:', () => {
  it("is absent unless written (no account limit); written empty, it is Lambda's 1000", () => {
    expect(parsed(mesh([], ['api', '{minScale: 1}'])).functions).toBeUndefined()
    expect(parsed(mesh(['functions: {}'], ['api', '{minScale: 1}'])).functions).toEqual({accountConcurrency: 1000})
    expect(parsed(mesh(['functions:'], ['api', '{minScale: 1}'])).functions).toEqual({accountConcurrency: 1000})
    expect(parsed(mesh(['functions: {accountConcurrency: 4}'], ['api', '{minScale: 1}'])).functions).toEqual({accountConcurrency: 4})
  })

  it('refuses a limit under 1, a fraction and unknown keys, at the value', () => {
    expect(errors(mesh(['functions: {accountConcurrency: 0}'], ['api', '{minScale: 1}']))).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: expected a whole number of requests in flight from 1 to 1000000, got 0',
    ])
    expect(errors(mesh(['functions: {accountConcurrency: 2.5}'], ['api', '{minScale: 1}']))).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: expected a whole number of requests in flight from 1 to 1000000, got 2.5',
    ])
    expect(errors(mesh(['functions: {accountConcurency: 10}'], ['api', '{minScale: 1}']))).toEqual([
      'mesh.yaml:2:13 functions.accountConcurency: unknown key "accountConcurency"; did you mean "accountConcurrency"?',
    ])
  })

  it('warns when no service has scaling: (the limit applies to scaled versions only)', () => {
    expect(warnings(yaml('name: fn', 'functions: {accountConcurrency: 10}', 'services:', '  db:', '    simulate: {}'))).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: warning: functions.accountConcurrency limits the versions that have scaling:, and none has: it limits nothing',
    ])
  })

  it('does not say no service has scaling: when one has, refused for an error of its own', () => {
    const broken = mesh(['functions: {accountConcurrency: 5}'], ['api', '{minScale: 1, containerConcurrency: -1}'])
    expect(errors(broken)).toEqual([expect.stringMatching(/services\.api\.scaling\.containerConcurrency: expected a whole number/)])
    expect(warnings(broken)).toEqual([])
  })
})

describe('scaling.reservedConcurrency', () => {
  it('is absent unless written, and 0 is a value (Lambda throttles every request), warned of', () => {
    expect(parsed(mesh([], ['api', '{minScale: 1}'])).services[0].versions[0].scaling).not.toHaveProperty('reservedConcurrency')
    expect(parsed(mesh([], ['api', '{minScale: 1, reservedConcurrency: 5}'])).services[0].versions[0].scaling?.reservedConcurrency).toBe(5)
    const off = mesh([], ['api', '{minScale: 1, reservedConcurrency: 0}'])
    expect(parsed(off).services[0].versions[0].scaling?.reservedConcurrency).toBe(0)
    expect(warnings(off)).toEqual([
      "mesh.yaml:5:49 services.api.scaling.reservedConcurrency: warning: reservedConcurrency 0 throttles every request (429), as Lambda's does to switch a function off; leave it out for no reservation",
    ])
  })

  it('refuses a negative or fractional reservation, at the value', () => {
    expect(errors(mesh([], ['api', '{minScale: 1, reservedConcurrency: -1}']))).toEqual([
      'mesh.yaml:5:49 services.api.scaling.reservedConcurrency: expected a whole number of requests in flight from 0 to 1000000, got -1',
    ])
    expect(errors(mesh([], ['api', '{minScale: 1, reservedConcurrency: 1.5}']))).toEqual([
      'mesh.yaml:5:49 services.api.scaling.reservedConcurrency: expected a whole number of requests in flight from 0 to 1000000, got 1.5',
    ])
  })

  it('refuses a reservation above the account limit, at the reservation', () => {
    expect(errors(mesh(['functions: {accountConcurrency: 10}'], ['api', '{minScale: 1, reservedConcurrency: 11}']))).toEqual([
      "mesh.yaml:6:49 services.api.scaling.reservedConcurrency: reservedConcurrency 11 is above functions.accountConcurrency 10: a reservation is taken from the account's pool; lower it or raise the limit",
    ])
    // Without functions: there is no account pool: the reservation is a cap only.
    expect(problems(mesh([], ['api', '{minScale: 1, reservedConcurrency: 11}']))).toEqual([])
  })

  it('refuses reservations that add up to more than the account limit, naming each', () => {
    const source = mesh(['functions: {accountConcurrency: 10}'], ['api', '{minScale: 1, reservedConcurrency: 6}'], ['worker', '{minScale: 1, reservedConcurrency: 5}'])
    expect(errors(source)).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: the reservedConcurrency of api 6, worker 5 adds up to 11, above functions.accountConcurrency 10; lower them or raise the limit',
    ])
    // The default limit, written as `functions: {}`: the error is at the key.
    const big = mesh(['functions: {}'], ['api', '{minScale: 1, reservedConcurrency: 600}'], ['worker', '{minScale: 1, reservedConcurrency: 500}'])
    expect(errors(big)).toEqual(['mesh.yaml:2:1 functions: the reservedConcurrency of api 600, worker 500 adds up to 1100, above functions.accountConcurrency 1000; lower them or raise the limit'])
  })

  it("counts a service's scaling: once for each version it is inherited by, and names the versions", () => {
    const source = yaml(
      'name: fn',
      'functions: {accountConcurrency: 10}',
      'services:',
      '  api:',
      '    simulate: {}',
      '    scaling: {minScale: 1, reservedConcurrency: 6}',
      '    versions: {v1: {}, v2: {}}',
    )
    expect(errors(source)).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: the reservedConcurrency of api v1 6, api v2 6 adds up to 12, above functions.accountConcurrency 10; lower them or raise the limit',
    ])
  })

  it('warns when the reservations leave nothing for the scaled versions without one', () => {
    const source = mesh(['functions: {accountConcurrency: 10}'], ['api', '{minScale: 1, reservedConcurrency: 10}'], ['worker', '{minScale: 1}'])
    expect(errors(source)).toEqual([])
    expect(warnings(source)).toEqual([
      'mesh.yaml:2:33 functions.accountConcurrency: warning: reservations take all of functions.accountConcurrency 10, leaving none for worker: every request to it is throttled (Lambda keeps 100 unreserved for this reason)',
    ])
  })

  it('warns of a reservation one instance cannot fill, one maxScale never uses, and minScale kept warm above it', () => {
    const about = (scaling: string) => warnings(mesh([], ['api', scaling])).filter((w) => w.includes('scaling.reservedConcurrency:'))
    // Below one instance's limit says it all: minScale 1 warm above it is not said again.
    expect(about('{minScale: 1, containerConcurrency: 10, target: 10, reservedConcurrency: 4}')).toEqual([
      'mesh.yaml:5:87 services.api.scaling.reservedConcurrency: warning: reservedConcurrency 4 is below containerConcurrency 10: not even one instance is ever given more than 4 at once',
    ])
    expect(about('{minScale: 1, maxScale: 3, containerConcurrency: 1, reservedConcurrency: 50}')).toEqual([
      "mesh.yaml:5:87 services.api.scaling.reservedConcurrency: warning: reservedConcurrency 50 is more than maxScale 3 × containerConcurrency 1 = 3 can run: 47 are taken from the account's pool and never used",
    ])
    expect(about('{minScale: 3, containerConcurrency: 1, reservedConcurrency: 2}')).toEqual([
      'mesh.yaml:5:74 services.api.scaling.reservedConcurrency: warning: minScale 3 keeps 3 requests of capacity warm, above reservedConcurrency 2: the rest idles (Lambda refuses provisioned concurrency above the reserved)',
    ])
    // Without containerConcurrency an instance takes any number: nothing to compare with.
    expect(about('{minScale: 1, maxScale: 3, reservedConcurrency: 50}')).toEqual([])
  })
})

describe('functions: in the JSON Schema editors get', () => {
  const validate = new Ajv({strict: true, allowUnionTypes: true}).compile(meshJsonSchema())
  const accepts = (functions: unknown, scaling: unknown = {}) => validate({name: 'x', functions, services: {a: {simulate: {}, scaling}}})

  it('takes what the checker takes', () => {
    expect(accepts({accountConcurrency: 4}, {reservedConcurrency: 2})).toBe(true)
    expect(accepts({}, {reservedConcurrency: 0})).toBe(true)
    expect(accepts(null)).toBe(true)
  })

  it.each([
    ['an account limit of 0', {accountConcurrency: 0}, {}],
    ['an unknown key', {limit: 4}, {}],
    ['a negative reservation', {}, {reservedConcurrency: -1}],
    ['a fractional reservation', {}, {reservedConcurrency: 1.5}],
  ])('refuses %s, as the checker does', (_, functions, scaling) => {
    expect(accepts(functions, scaling)).toBe(false)
    const text = JSON.stringify({name: 'x', functions, services: {a: {simulate: {}, scaling}}})
    expect(problems(text).filter((p) => !p.includes('warning:'))).not.toEqual([])
  })
})
