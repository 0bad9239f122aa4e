// compose's profiles: which services `mesh up` starts. A service without `profiles:` is
// always started; one with some only when one of them is enabled (`--profile NAME`,
// MESH_PROFILES, `*` for all) or when it is named on the command line. What a started
// service depends on is started with it — and must be enabled itself, as compose refuses
// a dependency whose profile is off rather than starting it unasked, unless the dependency
// says `required: false`: then the service starts without it.
import {MeshError} from '../errors.js'
import {callGraph, withDependencies} from './call-graph.js'
import {suggestion} from './did-you-mean.js'
import type {MeshConfig, ServiceConfig} from './types.js'

/** `--profile` flags, else MESH_PROFILES (comma-separated), as compose reads COMPOSE_PROFILES. */
export function activeProfiles(flags: readonly string[], env: string | undefined): string[] {
  const given = flags.length > 0 ? flags : (env ?? '').split(',')
  return [...new Set(given.map((p) => p.trim()).filter((p) => p !== ''))]
}

/** Whether `--profile`s enable the service (one without profiles always is). */
export function profileEnabled(service: Pick<ServiceConfig, 'profiles'>, profiles: readonly string[]): boolean {
  if (!service.profiles) return true
  return profiles.includes('*') || service.profiles.some((p) => profiles.includes(p))
}

/**
 * A warning for each `--profile` no service has (a typo would otherwise start nothing more,
 * silently), with the nearest known one.
 */
export function unknownProfiles(config: MeshConfig, profiles: readonly string[]): string[] {
  const known = [...new Set(config.services.flatMap((s) => s.profiles ?? []))].sort()
  return profiles
    .filter((p) => p !== '*' && !known.includes(p))
    .map((p) => `no service is in profile "${p}"${suggestion(p, known) || (known.length ? `; the profiles are ${known.join(', ')}` : '; no service has profiles')}`)
}

/** `profile debug is not enabled`, `profiles debug, tools are not enabled`: why a service was left out. */
export function profilesOff(service: Pick<ServiceConfig, 'profiles'>): string {
  const p = service.profiles ?? []
  return `profile${p.length > 1 ? 's' : ''} ${p.join(', ')} ${p.length > 1 ? 'are' : 'is'} not enabled`
}

/** Why `mesh up` left a service it did not select declared only: its profile, or other names given. */
export function whyLeftOut(service: Pick<ServiceConfig, 'profiles'>, profiles: readonly string[]): string {
  return service.profiles && !profileEnabled(service, profiles) ? `its ${profilesOff(service)}` : 'mesh up named other services'
}

/**
 * The services `mesh up [NAME...] [--profile P...]` starts: the named ones (whatever their
 * profiles) or every enabled one, and what they depend on. Undefined when that is every
 * service (nothing has profiles and nothing was named). Throws when a dependency's
 * profiles are all off, naming who needs it and the flag that enables it.
 */
export function servicesToStart(config: MeshConfig, named: readonly string[], profiles: readonly string[]): string[] | undefined {
  if (named.length === 0 && config.services.every((s) => !s.profiles)) return undefined
  const enabled = (name: string) => named.includes(name) || profileEnabled(config.services.find((s) => s.name === name)!, profiles)
  const roots = named.length > 0 ? named : config.services.filter((s) => profileEnabled(s, profiles)).map((s) => s.name)
  // A `required: false` dependency whose profile is off is left out, not refused (compose).
  const selected = withDependencies(config, roots, (optional) => !enabled(optional))
  const graph = callGraph(config)
  for (const name of selected) {
    if (enabled(name)) continue
    const service = config.services.find((s) => s.name === name)!
    const needs = (n: string) => graph.get(n)?.includes(name) && !config.services.find((s) => s.name === n)!.optionalDependsOn?.includes(name)
    const by = [...selected].find(needs)
    const enable = service.profiles!.map((p) => `--profile ${p}`).join(' or ')
    throw new MeshError('MESH_BAD_FLAG', `service "${by}" depends on "${name}", whose ${profilesOff(service)}.`, {
      hints: [`Enable it with ${enable}, name it too (\`mesh up ${[...(named.length ? named : [by]), name].join(' ')}\`), take "${name}" out of its profiles, or make the dependency optional (\`${name}: {required: false}\` in ${by}'s dependsOn).`],
    })
  }
  return [...selected]
}
