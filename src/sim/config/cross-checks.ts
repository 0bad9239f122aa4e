// Checks that need the whole file at once: references between services and versions,
// dependency cycles, port clashes, weights. They run on the normalised services that
// passed the schema, and point at the node that was written (origins from mesh-schema.ts).

import {formatPath, type Path, type Position, type Report} from './checker.js'
import {suggestion} from './did-you-mean.js'
import type {CheckedMesh} from './mesh-schema.js'
import type {AuthorizationConfig} from './types.js'
import {normalizePath} from '../security/path-normalizer.js'
import {mtlsCallers} from './tls-lint.js'
import {checkFunctions} from './functions-schema.js'
import {parseSpiffeId, principalOf} from '../security/spiffe.js'

export function crossCheck(checked: CheckedMesh, report: Report): void {
  unknownServices(checked, report)
  dependencyCycles(checked, report)
  portClashes(checked, report)
  singleReplicaWorkloads(checked, report)
  versionReferences(checked, report)
  tcpReferences(checked, report)
  completionConditions(checked, report)
  profileDependencies(checked, report)
  authorizationSources(checked, report)
  // Advice about what the whole file does: a part dropped for an error (an ingress with a bad field) would make it false.
  if (report.errorCount === 0) tokenRulesWithoutJwt(checked, report)
  unreachedServices(checked, report)
  unnormalizedPaths(checked, report)
  mtlsCallers(checked, report)
  checkFunctions(checked, report)
}

/**
 * Every request path is normalized before anything matches it (security/path-normalizer.ts),
 * so a path written in another form never matches: a deny rule on /admin//* would guard nothing.
 */
function unnormalizedPaths({config}: CheckedMesh, report: Report): void {
  const check = (path: string, at: Path) => {
    // `*.json` and `*` match by suffix: no dot segment or slash run to normalize.
    if (!path.startsWith('/')) return
    const normal = normalizePath(path)
    if (normal === path) return
    report.at(
      'warning',
      at,
      typeof normal === 'string'
        ? `${path} never matches: request paths are normalized first (dot segments, repeated slashes, %-escapes of unreserved characters and of / and \\), so write ${normal}`
        : `${path} never matches: the mesh refuses such a request path with 400 (${normal.reason})`,
    )
  }
  config.ingress?.routes.forEach((route, i) => check(route.prefix, ['ingress', 'routes', i, 'prefix']))
  for (const s of config.services) {
    const policy = ['services', s.name, 'policy']
    s.policy.routes.forEach((rule, i) => rule.match.pathPrefix !== undefined && check(rule.match.pathPrefix, [...policy, 'routes', i, 'match', 'pathPrefix']))
    for (const kind of ['allow', 'deny'] as const) {
      s.policy.authorization?.[kind]?.forEach((rule, i) => {
        for (const field of ['paths', 'notPaths'] as const) rule[field]?.forEach((p, j) => check(p, [...policy, 'authorization', kind, i, field, j]))
      })
    }
  }
}

/**
 * Authorization rules name callers that exist (a typo would silently refuse everyone), and
 * a declared call its callee refuses outright is worth a warning: it can only answer 403.
 */
function authorizationSources({config, declared}: CheckedMesh, report: Report): void {
  const callers = [...declared, 'ingress', 'unknown']
  const isCaller = new Set(callers)
  for (const s of config.services) {
    const auth = s.policy.authorization
    if (!auth) continue
    for (const kind of ['allow', 'deny'] as const) {
      auth[kind]?.forEach((rule, i) => {
        rule.from?.forEach((name, j) => {
          if (!isCaller.has(name)) {
            report.at('error', ['services', s.name, 'policy', 'authorization', kind, i, 'from', j], `unknown caller "${name}"${suggestion(name, callers) || `; callers are services, ingress, or unknown (calls to an instance's published address)`}`)
          }
        })
        for (const field of ['principals', 'notPrincipals'] as const) {
          rule[field]?.forEach((p, j) => {
            // A principal of this mesh that names no service is a typo: no caller ever presents it.
            const parts = parseSpiffeId(`spiffe://${principalOf(p)}`)
            if (!parts || parts.namespace !== config.name || parts.serviceAccount.includes('*') || isCaller.has(parts.serviceAccount)) return
            report.at('warning', ['services', s.name, 'policy', 'authorization', kind, i, field, j], `"${p}" names no service of mesh "${config.name}"${suggestion(parts.serviceAccount, callers)}`)
          })
        }
      })
    }
  }
  if (report.errorCount > 0) return
  const byName = new Map(config.services.map((s) => [s.name, s]))
  const refused = (callee: string, caller: string) => {
    const auth = byName.get(callee)?.policy.authorization
    return auth !== undefined && !mayEverAllow(auth, caller)
  }
  for (const s of config.services) {
    for (const dep of s.dependsOn) {
      if (refused(dep, s.name)) report.at('warning', ['services', dep, 'policy', 'authorization'], `"${s.name}" depends on "${dep}", but this policy refuses every call from "${s.name}" (403 RBAC)`, {atKey: true})
    }
  }
  config.ingress?.routes.forEach((route, i) => {
    if (refused(route.service, 'ingress')) report.at('warning', ['ingress', 'routes', i, 'service'], `"${route.service}"'s policy.authorization refuses every call from the ingress, so this route can only answer 403`)
  })
}

/**
 * A rule on the token means nothing where no jwtRule checks one: there is never a request
 * principal nor a claim, so an allow rule asking for one never matches, and a deny rule's
 * notRequestPrincipals matches every request.
 */
function tokenRulesWithoutJwt({config}: CheckedMesh, report: Report): void {
  const viaIngress = new Set(config.ingress?.requestAuthentication ? config.ingress.routes.map((r) => r.service) : [])
  for (const s of config.services) {
    if (s.policy.requestAuthentication || viaIngress.has(s.name)) continue
    const none = `no jwtRule checks a token on calls to "${s.name}" (add policy.requestAuthentication.jwtRules)`
    for (const kind of ['allow', 'deny'] as const) {
      s.policy.authorization?.[kind]?.forEach((rule, i) => {
        const at = ['services', s.name, 'policy', 'authorization', kind, i]
        if (rule.requestPrincipals) report.at('warning', [...at, 'requestPrincipals'], `${none}, so no request has a request principal: this rule never matches`, {atKey: true})
        if (rule.notRequestPrincipals) report.at('warning', [...at, 'notRequestPrincipals'], `${none}, so no request has a request principal: this matches every request`, {atKey: true})
        rule.when?.forEach((c, j) => {
          if (c.key.startsWith('request.auth.')) report.at('warning', [...at, 'when', j, 'key'], `${none}, so ${c.key} is always absent`)
        })
      })
    }
  }
}

/** Waiting for a service to complete needs a process that is allowed to finish. */
function completionConditions({config, origins}: CheckedMesh, report: Report): void {
  const byName = new Map(config.services.map((s) => [s.name, s]))
  for (const s of config.services) {
    for (const [dep, condition] of Object.entries(s.dependsOnConditions ?? {})) {
      const target = byName.get(dep)
      if (condition !== 'service_completed_successfully' || !target) continue
      const at = origins.get(s.name)!.dependsOn.get(dep)!
      const kind = target.versions.find((v) => v.workload.kind !== 'command')?.workload.kind
      if (kind) {
        report.at('error', at, `"${dep}" is ${kind === 'address' ? 'an address: the mesh runs no process of it' : 'simulated: it serves until mesh down'}, so it never completes`)
      } else if (!target.restart) {
        report.at('error', at, `"${dep}" is restarted whenever it exits (restart: always, the default), so it never completes; give it restart: "no" (or on-failure)`)
      }
    }
  }
}

/**
 * compose's profiles: whatever enables a service must enable what it depends on, or
 * `mesh up` refuses (as compose does) rather than start a service whose profile is off.
 */
function profileDependencies({config, origins}: CheckedMesh, report: Report): void {
  const byName = new Map(config.services.map((s) => [s.name, s]))
  for (const s of config.services) {
    for (const dep of s.dependsOn) {
      const needed = byName.get(dep)?.profiles
      if (!needed || s.optionalDependsOn?.includes(dep)) continue
      const at = origins.get(s.name)!.dependsOn.get(dep)!
      const enable = `--profile ${needed[0]}`
      if (!s.profiles) report.at('warning', at, `"${dep}" starts only with profile ${needed.join(' or ')}, but "${s.name}" always starts: \`mesh up\` without ${enable} refuses to start`)
      else {
        const without = s.profiles.filter((p) => !needed.includes(p))
        if (without.length > 0) report.at('warning', at, `"${dep}" starts only with profile ${needed.join(' or ')}: \`mesh up --profile ${without[0]}\` starts "${s.name}" but refuses without ${enable}`)
      }
    }
  }
}

/** The ingress and simulated calls speak HTTP: neither can reach a `protocol: tcp` service. */
function tcpReferences({config, origins}: CheckedMesh, report: Report): void {
  const tcp = new Set(config.services.filter((s) => s.protocol === 'tcp').map((s) => s.name))
  if (tcp.size === 0) return
  config.ingress?.routes.forEach((route, i) => {
    if (tcp.has(route.service)) report.at('error', ['ingress', 'routes', i, 'service'], `"${route.service}" is protocol: tcp; the ingress routes HTTP requests only`)
  })
  for (const s of config.services) {
    const called = new Set(s.versions.flatMap((v) => (v.workload.kind === 'simulate' ? v.workload.simulate.calls.map((c) => c.service) : [])))
    for (const name of called) {
      if (tcp.has(name)) report.at('error', origins.get(s.name)!.dependsOn.get(name)!, `a simulated service calls over HTTP, but "${name}" is protocol: tcp`)
    }
  }
}

function unknownName(kind: 'service' | 'version', name: string, known: string[], of?: string): string {
  const where = of ? ` of service "${of}"` : ''
  const hint = suggestion(name, known) || (known.length ? `; known ${kind}s: ${known.join(', ')}` : '')
  return `unknown ${kind} "${name}"${where}${hint}`
}

function unknownServices({config, origins, declared}: CheckedMesh, report: Report): void {
  const known = new Set(declared)
  config.ingress?.routes.forEach((route, i) => {
    if (!known.has(route.service)) report.at('error', ['ingress', 'routes', i, 'service'], unknownName('service', route.service, declared))
  })
  // dependsOn includes the services simulate calls name, each with where it was written.
  for (const s of config.services) {
    for (const dep of s.dependsOn) {
      if (!known.has(dep)) report.at('error', origins.get(s.name)!.dependsOn.get(dep)!, unknownName('service', dep, declared))
    }
    for (const [callee, at] of origins.get(s.name)!.modelCalls) {
      if (!known.has(callee)) report.at('error', at, unknownName('service', callee, declared))
    }
  }
}

/** `dependency cycle: a → b → a`, once per cycle, at the edge leaving its first service in file order. */
function dependencyCycles({config, origins}: CheckedMesh, report: Report): void {
  const byName = new Map(config.services.map((s, i) => [s.name, {service: s, order: i}]))
  const state = new Map<string, 'visiting' | 'done'>()
  const stack: string[] = []
  const seen = new Set<string>()

  // Depth-first without recursion (a 5,000-service chain would overflow the call stack):
  // `next` holds, for each service on the stack, the index of the dependency to look at next.
  const next: number[] = []
  const visit = (start: string): void => {
    state.set(start, 'visiting')
    stack.push(start)
    next.push(0)
    while (stack.length > 0) {
      const name = stack.at(-1)!
      const deps = byName.get(name)!.service.dependsOn
      const i = next[next.length - 1]++
      if (i >= deps.length) {
        stack.pop()
        next.pop()
        state.set(name, 'done')
        continue
      }
      const dep = deps[i]
      if (!byName.has(dep)) continue
      if (state.get(dep) === 'visiting') {
        const cycle = stack.slice(stack.lastIndexOf(dep))
        // Start the cycle at its earliest service so the same cycle reads the same however it was found.
        const first = cycle.reduce((a, b) => (byName.get(a)!.order <= byName.get(b)!.order ? a : b))
        const at = cycle.indexOf(first)
        const ordered = [...cycle.slice(at), ...cycle.slice(0, at)]
        const key = ordered.join('\u0000')
        if (seen.has(key)) continue
        seen.add(key)
        report.at('error', origins.get(first)!.dependsOn.get(ordered[1] ?? first)!, `dependency cycle: ${[...ordered, first].join(' → ')}`)
      } else if (!state.has(dep)) {
        state.set(dep, 'visiting')
        stack.push(dep)
        next.push(0)
      }
    }
  }
  for (const s of config.services) if (!state.has(s.name)) visit(s.name)
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '0.0.0.0'])

/** A port bound twice on this machine: ingress, fixed ports, and addresses on localhost. */
function portClashes({config, origins}: CheckedMesh, report: Report): void {
  interface Use {
    port: number
    path: Path
    position: Position
  }
  const uses: Use[] = []
  const add = (port: number, path: Path) => uses.push({port, path, position: report.position(report.locate(path).positionNode)})

  if (config.ingress && config.ingress.port !== 0) add(config.ingress.port, ['ingress', 'port'])
  for (const s of config.services) {
    const sharedPort = new Map<string, {port: number; versions: string[]}>()
    for (const v of s.versions) {
      const o = origins.get(s.name)!.versions.get(v.name)!
      if (v.port !== undefined && o.port) {
        const key = formatPath(o.port)
        // A service-level port inherited by several versions: each version's instance would bind it.
        const shared = sharedPort.get(key)
        if (shared) shared.versions.push(v.name)
        else {
          sharedPort.set(key, {port: v.port, versions: [v.name]})
          add(v.port, o.port)
        }
      }
      if (v.workload.kind === 'address' && LOCAL_HOSTS.has(v.workload.host) && o.address) {
        if (!uses.some((u) => formatPath(u.path) === formatPath(o.address!))) add(v.workload.port, o.address)
      }
    }
    for (const {port, versions} of sharedPort.values()) {
      if (versions.length > 1) {
        const path = origins.get(s.name)!.versions.get(versions[0])!.port!
        report.at('error', path, `port ${port} would be bound by each of versions ${versions.join(', ')}; set port per version`)
      }
    }
  }

  uses.sort((a, b) => a.position.line - b.position.line || a.position.column - b.position.column)
  const first = new Map<number, Use>()
  for (const use of uses) {
    const earlier = first.get(use.port)
    if (earlier) report.at('error', use.path, `port ${use.port} is already used by ${formatPath(earlier.path)}`)
    else first.set(use.port, use)
  }
}

/** A fixed port or an external address is one instance, so replicas must be 1. */
function singleReplicaWorkloads({config, origins}: CheckedMesh, report: Report): void {
  const reported = new Set<string>()
  for (const s of config.services) {
    for (const v of s.versions) {
      if (v.replicas <= 1) continue
      const o = origins.get(s.name)!.versions.get(v.name)!
      const once = (path: Path, message: string) => {
        const key = formatPath(path)
        if (reported.has(key)) return
        reported.add(key)
        report.at('error', path, message)
      }
      if (o.port) once(o.port, `a fixed port allows only one instance, but replicas is ${v.replicas}; remove port or set replicas: 1`)
      if (o.address) once(o.address, `an address is one instance the mesh does not start, but replicas is ${v.replicas}; set replicas: 1`)
    }
  }
}

/** routes, weights and mirror name versions of their own service; weights sum to 100. */
function versionReferences({config}: CheckedMesh, report: Report): void {
  for (const s of config.services) {
    const path: Path = ['services', s.name, 'policy']
    const known = s.versions.map((v) => v.name)
    const check = (name: string, at: Path, atKey = false) => {
      if (!known.includes(name)) report.at('error', at, unknownName('version', name, known, s.name), {atKey})
    }
    s.policy.routes.forEach((route, i) => check(route.version, [...path, 'routes', i, 'version']))
    if (s.policy.mirror) check(s.policy.mirror.version, [...path, 'mirror', 'version'])
    if (s.policy.weights) {
      for (const v of Object.keys(s.policy.weights)) check(v, [...path, 'weights', v], true)
      const sum = Object.values(s.policy.weights).reduce((a, b) => a + b, 0)
      // Weights are written as percents; a little float slack for 33.3 + 33.3 + 33.4.
      if (Math.abs(sum - 100) > 1e-9) report.at('error', [...path, 'weights'], `weights must sum to 100, got ${Math.round(sum * 1000) / 1000}`)
    }
  }
}

/** With an ingress, a service that nothing reaches is probably a mistake (a typo in dependsOn, a forgotten route). */
function unreachedServices({config}: CheckedMesh, report: Report): void {
  // Next to errors (a typo in a route, a broken service left out) this would mostly repeat them: say nothing.
  if (!config.ingress || report.errorCount > 0) return
  const reached = new Set<string>(config.ingress.routes.map((r) => r.service))
  for (const s of config.services) for (const dep of s.dependsOn) reached.add(dep)
  for (const s of config.services) {
    // A one-shot job (a seed, a report) is run for what it does, not to be called.
    if (!reached.has(s.name) && !s.restart) {
      report.at('warning', ['services', s.name], `service "${s.name}" is not reached: no ingress route leads to it and no service depends on it`, {atKey: true})
    }
  }
}

/**
 * Whether some request from `source` could be allowed (a method or path may still be
 * refused): authorizationSources warns about a dependency whose policy refuses its caller outright.
 * It reads rules as authorize() (proxy/policy/authorization.ts) matches them: change both together.
 */
export function mayEverAllow(config: AuthorizationConfig, source: string): boolean {
  // A deny rule that names nothing but callers refuses the source whatever it asks; any other field may not hold.
  if (config.deny?.some((rule) => Object.keys(rule).every((k) => k === 'from') && (!rule.from || rule.from.includes(source)))) return false
  return !config.allow || config.allow.some((rule) => !rule.from || rule.from.includes(source))
}
