import {describe, expect, test} from 'vitest'
import {activeProfiles, profileEnabled, servicesToStart, unknownProfiles} from '../../src/sim/config/profiles.js'
import {MeshError} from '../../src/sim/errors.js'
import {parsed, problems, yaml} from './helpers.js'

// compose's own example: web always; mock-backend and db in dev; phpmyadmin in debug, needing db.
const mesh = parsed(
  yaml(
    'name: p',
    'ingress: {port: 0, routes: [{prefix: /, service: web}]}',
    'services:',
    '  web: {simulate: {}}',
    '  mock-backend: {profiles: [dev], dependsOn: [db], simulate: {}}',
    '  db: {profiles: [dev], simulate: {}}',
    '  phpmyadmin: {profiles: [debug], dependsOn: [db], simulate: {}}',
  ),
)

function refusal(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(MeshError)
    return `${(error as MeshError).message} ${(error as MeshError).hints.join(' ')}`
  }
  throw new Error('expected a refusal')
}

describe('profiles', () => {
  test('--profile flags win over MESH_PROFILES; both are trimmed and deduplicated', () => {
    expect(activeProfiles(['dev', 'dev'], 'debug')).toEqual(['dev'])
    expect(activeProfiles([], ' debug, dev ,')).toEqual(['debug', 'dev'])
    expect(activeProfiles([], undefined)).toEqual([])
  })

  test('a service without profiles always starts; one with some when one is enabled, or *', () => {
    expect(profileEnabled({}, [])).toBe(true)
    expect(profileEnabled({profiles: ['dev']}, [])).toBe(false)
    expect(profileEnabled({profiles: ['dev', 'qa']}, ['qa'])).toBe(true)
    expect(profileEnabled({profiles: ['dev']}, ['*'])).toBe(true)
  })

  test('mesh up starts the enabled services and what they need', () => {
    expect(servicesToStart(mesh, [], [])?.sort()).toEqual(['web'])
    expect(servicesToStart(mesh, [], ['dev'])?.sort()).toEqual(['db', 'mock-backend', 'web'])
    expect(servicesToStart(mesh, [], ['dev', 'debug'])?.sort()).toEqual(['db', 'mock-backend', 'phpmyadmin', 'web'])
    expect(servicesToStart(mesh, [], ['*'])?.sort()).toEqual(['db', 'mock-backend', 'phpmyadmin', 'web'])
  })

  test('a named service starts whatever its profiles; with profiles in the file nothing is "every service"', () => {
    expect(servicesToStart(mesh, ['db'], [])?.sort()).toEqual(['db'])
    expect(servicesToStart(mesh, ['phpmyadmin', 'db'], [])?.sort()).toEqual(['db', 'phpmyadmin'])
    expect(servicesToStart(mesh, ['phpmyadmin'], ['dev'])?.sort()).toEqual(['db', 'phpmyadmin'])
    const plain = parsed(yaml('name: q', 'services:', '  a: {simulate: {}}'))
    expect(servicesToStart(plain, [], ['dev'])).toBeUndefined()
    expect(servicesToStart(plain, ['a'], [])).toEqual(['a'])
  })

  test("a dependency whose profile is off is refused, as compose does, naming who needs it and how to enable it", () => {
    expect(refusal(() => servicesToStart(mesh, ['phpmyadmin'], []))).toBe(
      'service "phpmyadmin" depends on "db", whose profile dev is not enabled. Enable it with --profile dev, name it too (`mesh up phpmyadmin db`), take "db" out of its profiles, or make the dependency optional (`db: {required: false}` in phpmyadmin\'s dependsOn).',
    )
    expect(refusal(() => servicesToStart(mesh, [], ['debug']))).toContain('service "phpmyadmin" depends on "db", whose profile dev is not enabled.')
  })

  test('a required: false dependency whose profile is off is left out, not refused; enabled, it starts as any other', () => {
    const optional = parsed(
      yaml('name: o', 'services:', '  app: {dependsOn: {db: {condition: service_healthy, required: false}, cache: {required: false}}, simulate: {}}', '  db: {profiles: [dev], simulate: {}}', '  cache: {simulate: {}}'),
    )
    expect(optional.services[0].optionalDependsOn).toEqual(['db', 'cache'])
    expect(servicesToStart(optional, [], [])?.sort()).toEqual(['app', 'cache'])
    expect(servicesToStart(optional, ['app'], [])?.sort()).toEqual(['app', 'cache'])
    expect(servicesToStart(optional, [], ['dev'])?.sort()).toEqual(['app', 'cache', 'db'])
    expect(servicesToStart(optional, ['app', 'db'], [])?.sort()).toEqual(['app', 'cache', 'db'])
  })

  test('mesh validate warns where enabling a service does not enable what it depends on', () => {
    expect(problems(yaml('name: p', 'services:', '  web: {dependsOn: [db], simulate: {}}', '  db: {profiles: [dev], simulate: {}}', '  tool: {profiles: [debug, dev], dependsOn: [db], simulate: {}}'))).toEqual([
      'mesh.yaml:3:21 services.web.dependsOn[0]: warning: "db" starts only with profile dev, but "web" always starts: `mesh up` without --profile dev refuses to start',
      'mesh.yaml:5:46 services.tool.dependsOn[0]: warning: "db" starts only with profile dev: `mesh up --profile debug` starts "tool" but refuses without --profile dev',
    ])
    expect(problems(yaml('name: p', 'services:', '  web: {dependsOn: {db: {required: false}}, simulate: {}}', '  db: {profiles: [dev], simulate: {}}'))).toEqual([])
  })

  test('a --profile no service has is named, with the nearest known one', () => {
    expect(unknownProfiles(mesh, ['dev', 'debgu', '*', 'zzz'])).toEqual(['no service is in profile "debgu"; did you mean "debug"?', 'no service is in profile "zzz"; the profiles are debug, dev'])
    expect(unknownProfiles(parsed(yaml('name: q', 'services:', '  a: {simulate: {}}')), ['dev'])).toEqual(['no service is in profile "dev"; no service has profiles'])
  })

  test('a profile name is checked where it is written', () => {
    expect(problems(yaml('name: p', 'services:', '  db: {profiles: [-dev], simulate: {}}'))).toEqual([
      'mesh.yaml:3:19 services.db.profiles[0]: expected a profile name (letters, digits, then also _ . -), got "-dev"',
    ])
  })
})
