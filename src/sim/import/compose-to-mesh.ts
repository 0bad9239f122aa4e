// A compose project as a mesh.yaml: each compose service becomes a mesh service — a
// `command:` the mesh runs on this machine, or, for a container the mesh cannot run (only an
// image, or a build), an `address:` where you run it yourself (a comment says how) or a
// `simulate:` stand-in — and every field with no equivalent is a Loss, never dropped in silence.
//
//   ComposeProject ──plan (names, kinds, ports)──▶ plans ──emit──▶ yaml Document (with comments) + losses

import path from 'node:path'
import {Document, isMap, isSeq, Scalar, type YAMLMap} from 'yaml'
import {formatPath, type At} from '../config/checker.js'
import {formatDuration} from '../config/duration.js'
import {CONTAINER_IMAGE, MAX_NAME_LENGTH} from '../config/mesh-schema.js'
import {dependencyEnvName, dependencyEnvPrefix as envPrefix} from '../config/env-names.js'
import type {ComposeCommand, ComposePort, ComposeProject, ComposeService} from './compose-file.js'
import type {Loss} from './loss.js'

export interface ComposeImportOptions {
  /** Where mesh.yaml will be written (absolute): paths in it are relative to its directory. */
  outFile: string
  /** Image-only services as `simulate:` stand-ins rather than `address:` services. */
  simulateImages?: boolean
}

/** What each compose service became. */
export interface ImportedService {
  compose: string
  name: string
  as: 'command' | 'address' | 'simulate'
}

export interface ComposeImport {
  /** mesh.yaml's text. */
  yaml: string
  services: ImportedService[]
  losses: Loss[]
}

/** Ports, databases and brokers, that speak no HTTP: an image listening on one becomes protocol: tcp. */
const TCP_PORTS: Record<number, string> = {
  1433: 'SQL Server', 1521: 'Oracle', 1883: 'MQTT', 2181: 'ZooKeeper', 3306: 'MySQL/MariaDB', 4222: 'NATS', 5432: 'PostgreSQL', 5672: 'AMQP',
  6379: 'Redis', 9042: 'Cassandra', 9092: 'Kafka', 11211: 'memcached', 27017: 'MongoDB',
}
/** Where well-known images listen, for an image compose gives no port (it reaches it on its network by name). */
const IMAGE_PORTS: Record<string, number> = {
  postgres: 5432, postgresql: 5432, postgis: 5432, mysql: 3306, mariadb: 3306, redis: 6379, valkey: 6379, mongo: 27017, mongodb: 27017,
  rabbitmq: 5672, memcached: 11211, nats: 4222, kafka: 9092, zookeeper: 2181, elasticsearch: 9200, nginx: 80, httpd: 80,
}

/** `mariadb:10.6`, `docker.io/library/postgres@sha256:…`, `bitnami/redis` → the usual port of that image, if known. */
function imagePort(image: string | undefined): number | undefined {
  const repo = image?.split('@')[0].split('/').at(-1)?.split(':')[0]
  return repo !== undefined && Object.hasOwn(IMAGE_PORTS, repo) ? IMAGE_PORTS[repo] : undefined
}

/** Below this a port needs privileges to bind on most systems: the mesh's ingress moves up by this much. */
const PRIVILEGED = 1024
const PRIVILEGED_SHIFT = 8000

interface Plan {
  service: ComposeService
  name: string
  kind: 'command' | 'address' | 'simulate'
  command?: string
  /** The port the process listens on in compose (a container port). */
  listens?: number
  /** `port:` in mesh.yaml: the process keeps listening where it did. */
  fixedPort?: number
  /** `address:`'s port, and the `-p HOST:CONTAINER` pairs of the docker run comment. */
  addressPort?: number
  publish: Array<[number, number]>
  protocol: 'http' | 'tcp'
  /** `listens` is the image's usual port: compose named none. */
  usual?: boolean
}

export function composeToMesh(project: ComposeProject, options: ComposeImportOptions): ComposeImport {
  const losses: Loss[] = []
  const outDir = path.dirname(options.outFile)
  const loss = (at: At, kind: Loss['kind'], reason: string) => {
    // A whole block (or a key not carried at all) is pointed at by its key; a value, at itself.
    const node = at.keyNode && (kind === 'dropped' || at.kind === 'map' || at.kind === 'seq') ? at.keyNode : at.positionNode
    const {line, column} = at.report.position(node)
    losses.push({file: project.file, line, column, path: formatPath(at.path), kind, reason})
  }
  const rel = (p: string) => relativePath(outDir, path.resolve(project.dir, p))

  for (const {key, at} of project.unmapped) loss(at, 'dropped', TOP_REASONS[key] ?? `compose's top-level ${key}: has no counterpart in mesh.yaml`)
  for (const s of project.substituted) loss(s.at, 'changed', `\${…} substituted on import: "${s.written}" is written as ${JSON.stringify(s.value)} (environment and commands keep their variables: the mesh substitutes those itself)`)

  const names = meshNames(project.services.map((s) => s.name))
  const plans: Plan[] = project.services.map((service) => plan(service, names.get(service.name)!, options))
  for (const p of plans) if (p.name !== p.service.name) loss(p.service.at.keyAt(), 'changed', `named "${p.name}": mesh service names are DNS labels (lowercase letters, digits and dashes, from a letter)`)

  // Ports on this machine, one owner each: the ingress first, as it takes the port users knew.
  const used = new Set<number>()
  const claim = (wanted: number) => {
    let port = wanted < PRIVILEGED ? wanted + PRIVILEGED_SHIFT : wanted
    while (used.has(port)) port++
    used.add(port)
    return port
  }
  const entry = entryPoint(plans)
  const ingressPublished = entry ? published(entry.service)[0] : undefined
  // A port users knew keeps it; a privileged one moves anyway, so it yields to the services' own.
  const ingressFirst = ingressPublished !== undefined && ingressPublished.host! >= PRIVILEGED
  let ingressPort = ingressFirst ? claim(ingressPublished.host!) : undefined
  // The entry's own port first: it is the one users reach through the ingress.
  for (const p of entry ? [entry, ...plans.filter((o) => o !== entry)] : plans) {
    if (p.kind === 'address') {
      const wanted = published(p.service)[0]?.host ?? p.listens!
      p.addressPort = claim(wanted)
      p.publish = [[p.addressPort, p.listens!], ...published(p.service).filter((port) => port.container !== p.listens).map((port): [number, number] => [port.host!, port.container])]
    } else if (p.kind === 'command' && p.listens !== undefined && replicasOf(p.service) <= 1) {
      const port = claim(p.listens)
      if (port === p.listens) p.fixedPort = port
      else used.delete(port)
    }
  }
  if (ingressPublished && !ingressFirst) ingressPort = claim(ingressPublished.host!)
  if (ingressPublished && ingressPort !== ingressPublished.host) loss(ingressPublished.at, 'changed', `published on ${ingressPublished.host}, a privileged port: the mesh's ingress listens on ${ingressPort} instead`)

  const doc = new Document({})
  doc.commentBefore = ` Imported from ${relativePath(outDir, project.file)} by \`mesh import compose\`.\n What was not carried over, or changed meaning, is listed where it was imported (and in --json).`
  const root = doc.contents as YAMLMap
  root.set('name', meshName(project))
  if (entry && ingressPort !== undefined) {
    const routes = doc.createNode([{prefix: '/', service: entry.name}])
    ;(routes.items[0] as YAMLMap).flow = true
    const others = plans.filter((p) => p !== entry && p.protocol === 'http' && published(p.service).length > 0)
    if (others.length > 0) routes.comment = others.map((p) => ` ${p.name} was published on ${published(p.service)[0].host}: route to it with {prefix: /${p.name}, service: ${p.name}, rewrite: /}`).join('\n')
    root.set('ingress', doc.createNode({port: ingressPort, routes}))
  }
  const services = doc.createNode({}) as YAMLMap
  root.set('services', services)
  for (const p of plans) {
    const node = emitService(doc, p, plans, names, project, options, loss, rel)
    const pair = doc.createPair(p.name, node)
    const comment = serviceComment(p, project, rel)
    if (comment) (pair.key as Scalar).commentBefore = comment
    services.items.push(pair)
  }

  // Published ports that did not become the ingress or an address: said once each.
  for (const p of plans) {
    for (const port of p.service.ports) {
      if (port.range) loss(port.at, 'dropped', 'a port range: only its first port is read')
      if (port.protocol !== 'tcp') loss(port.at, 'dropped', `${port.protocol} ports: the mesh carries TCP (HTTP, gRPC and plain TCP) only`)
      else if (port === ingressPublished) {
        // The ingress's own: said above when it moved.
      } else if (port.host === undefined) loss(port.at, 'dropped', 'published on a port docker picks: the mesh publishes only its ingress (and each address is where you run it)')
      else if (p.kind === 'command') loss(port.at, 'changed', p === entry ? `also published on ${port.host}: the mesh's ingress listens on ${ingressPort} only` : `published on ${port.host} in compose: reach it through the ingress (a route is suggested in mesh.yaml) or at its own port`)
      else if (p.kind === 'address' && port.container !== p.listens) loss(port.at, 'changed', `published on ${port.host} too: the docker run line publishes it, and the mesh routes to ${p.addressPort} (address:) only`)
      else if (p.kind === 'simulate') loss(port.at, 'dropped', `published on ${port.host} in compose: a simulated stand-in is reached through the mesh (its callers' $${dependencyEnvName(p.name)}, or an ingress route)`)
      if (port.hostIp && port.hostIp !== '127.0.0.1' && port.hostIp !== 'localhost') loss(port.at, 'changed', `host_ip ${port.hostIp}: the mesh listens on 127.0.0.1 only`)
    }
  }

  return {
    yaml: doc.toString({lineWidth: 0, flowCollectionPadding: false}),
    services: plans.map((p) => ({compose: p.service.name, name: p.name, as: p.kind})),
    losses: losses.sort((a, b) => a.line - b.line || a.column - b.column),
  }
}

// ---------------------------------------------------------------------------------
// Planning

function plan(service: ComposeService, name: string, options: ComposeImportOptions): Plan {
  const command = commandLine(service)
  const listens = published(service)[0]?.container ?? service.ports.find((p) => p.protocol === 'tcp')?.container ?? service.expose[0]?.value
  const appProtocol = service.ports.find((p) => p.appProtocol)?.appProtocol
  if (command !== undefined) return {service, name, kind: 'command', command, listens, publish: [], protocol: appProtocol && !/^(http|https|h2c?|grpc)$/.test(appProtocol) ? 'tcp' : 'http'}
  const usual = listens === undefined ? imagePort(service.image?.value) : undefined
  if (usual !== undefined && !options.simulateImages) return {service, name, kind: 'address', listens: usual, usual: true, publish: [], protocol: TCP_PORTS[usual] ? 'tcp' : 'http'}
  const tcp = listens !== undefined && (TCP_PORTS[listens] !== undefined || (appProtocol !== undefined && !/^(http|https|h2c?)$/.test(appProtocol)))
  if (options.simulateImages || listens === undefined) return {service, name, kind: 'simulate', listens, publish: [], protocol: 'http'}
  return {service, name, kind: 'address', listens, publish: [], protocol: tcp ? 'tcp' : 'http'}
}

/**
 * The service the ingress routes to: an HTTP one compose publishes, preferring one no other
 * service depends on (what users open), then one that depends on others (a gateway), then file order.
 */
function entryPoint(plans: Plan[]): Plan | undefined {
  const candidates = plans.filter((p) => p.protocol === 'http' && published(p.service).length > 0)
  const dependedOn = (p: Plan) => plans.some((o) => o.service.dependsOn.some((d) => d.name === p.service.name))
  const score = (p: Plan) => (dependedOn(p) ? 0 : 2) + (p.service.dependsOn.length > 0 ? 1 : 0)
  return candidates.reduce<Plan | undefined>((best, p) => (best === undefined || score(p) > score(best) ? p : best), undefined)
}

/** The ports compose publishes on this machine (TCP, with a host port), in file order. */
function published(service: ComposeService): ComposePort[] {
  return service.ports.filter((p) => p.protocol === 'tcp' && p.host !== undefined)
}

function replicasOf(service: ComposeService): number {
  return service.replicas?.value ?? 1
}

/**
 * entrypoint + command as one shell line; undefined when there is no program to run: only an
 * image (or a build), or a command that is only the image's arguments (`--default-auth…`).
 */
function commandLine(service: ComposeService): string | undefined {
  const parts = [service.entrypoint?.value, service.command?.value].filter((c): c is ComposeCommand => c !== undefined)
  if (parts.length === 0) return undefined
  const line = parts.map((c) => ('shell' in c ? c.shell.trim() : c.args.map(shellWord).join(' '))).join(' ')
  if (!service.entrypoint && (service.image || service.build) && line.startsWith('-')) return undefined
  return line
}

/**
 * One argument of compose's list form for `sh -c`: double quotes where needed, leaving `$VAR`
 * for the mesh (and the instance's shell) to substitute, as compose would; `$$` (compose's
 * literal $) stays literal through both.
 */
export function shellWord(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg
  return `"${arg.replace(/[\\"`]/g, (c) => `\\${c}`).replaceAll('$$', () => '\\$$')}"`
}

/** compose names → mesh names: DNS labels, unique, never `ingress`. */
function meshNames(composeNames: string[]): Map<string, string> {
  const out = new Map<string, string>()
  const taken = new Set<string>()
  for (const original of composeNames) {
    let base = original.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '')
    if (!/^[a-z]/.test(base)) base = `s-${base}`.replace(/-$/, '')
    if (base === 'ingress') base = 'ingress-service'
    base = base.slice(0, MAX_NAME_LENGTH).replace(/-$/, '')
    let name = base
    for (let i = 2; taken.has(name) || (name !== original && composeNames.includes(name)); i++) name = `${base.slice(0, MAX_NAME_LENGTH - String(i).length - 1)}-${i}`
    taken.add(name)
    out.set(original, name)
  }
  return out
}

/** compose's `name:`, else its directory's name, as a mesh name. */
function meshName(project: ComposeProject): string {
  const given = project.name?.value ?? path.basename(project.dir)
  const name = given.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '')
  return name === '' ? 'imported' : name
}

function relativePath(from: string, to: string): string {
  const r = path.relative(from, to)
  return r === '' ? '.' : r.split(path.sep).join('/')
}

// ---------------------------------------------------------------------------------
// Emitting one service

type LossAt = (at: At, kind: Loss['kind'], reason: string) => void

function emitService(doc: Document, p: Plan, plans: Plan[], names: Map<string, string>, project: ComposeProject, options: ComposeImportOptions, loss: LossAt, rel: (p: string) => string): YAMLMap {
  const s = p.service
  const out = doc.createNode({}) as YAMLMap
  const set = (key: string, value: unknown, flow = false) => {
    const node = doc.createNode(value, {aliasDuplicateObjects: false})
    if (flow && (isMap(node) || isSeq(node))) node.flow = true
    out.set(key, node)
    return node
  }

  if (p.kind === 'command') {
    set('command', p.command)
    const cwd = workingDirectory(s, loss)
    if (cwd !== undefined) set('cwd', rel(cwd))
    image(s, set, loss)
    const env = new Map<string, string>()
    for (const {value: [name, value], at} of s.environment) {
      if (name === 'PORT') loss(at, 'dropped', `the mesh sets PORT for each instance${p.fixedPort !== undefined ? ` (here ${p.fixedPort}, from port:)` : ''}`)
      else if (s.dependsOn.some((d) => name === dependencyEnvName(names.get(d.name)!))) {
        loss(at, 'changed', `the mesh sets ${name} itself, to the sidecar in front of its dependency, over any value given here: left out`)
      } else {
        env.set(name, value ?? `\${${name}}`)
        const mentions = plans.find((other) => other !== p && value !== undefined && new RegExp(`(^|[/@])${escapeRegExp(other.service.name)}($|[:/])`).test(value))
        if (mentions) loss(at, 'changed', `names "${mentions.service.name}", a host name on compose's network: here each dependency is reached at $${dependencyEnvName(mentions.name)} (or $${envPrefix(mentions.name)}_ADDR), which the mesh gives the command`)
      }
    }
    if (env.size > 0) set('env', Object.fromEntries(env))
    const envFiles = s.envFiles.filter((f) => {
      if (f.value.present) return true
      loss(f.at, 'dropped', `optional (required: false) and not there now; the mesh reads every envFile it names: add it when ${f.value.path} exists`)
      return false
    })
    if (envFiles.length > 0) set('envFile', envFiles.length === 1 ? rel(envFiles[0].value.path) : envFiles.map((f) => rel(f.value.path)))
    if (p.fixedPort !== undefined) set('port', p.fixedPort)
    else {
      const why = p.listens === undefined ? 'compose names no port it listens on' : replicasOf(s) > 1 ? `it listened on ${p.listens} in each of its ${replicasOf(s)} containers` : `${p.listens} is taken on this machine (by the ingress or another service)`
      loss(s.ports[0]?.at ?? s.expose[0]?.at ?? s.at.keyAt(), 'changed', `${why}: the mesh gives each instance a port in $PORT, where the command must listen`)
    }
  } else if (p.kind === 'address') {
    set('address', `127.0.0.1:${p.addressPort}`)
    image(s, set, loss)
    if (s.image && p.listens !== p.addressPort) loss(s.image.at, 'changed', `mesh export runs image: in a pod listening on the address's port, ${p.addressPort}; the container listens on ${p.listens}: in a cluster, have it listen on ${p.addressPort} (or edit the exported containerPort)`)
    if (p.usual) loss(s.image!.at, 'changed', `compose names no port: ${p.listens} is where ${s.image!.value} usually listens (change it in address: and the docker run line if not)`)
    if (s.environment[0]) loss(s.environment[0].at, 'changed', 'the environment is the container\'s: it is in the docker run line above the service')
  } else {
    set('simulate', {}, true)
    const env = s.environment[0]?.at ?? s.envFiles[0]?.at
    if (env) loss(env, 'dropped', 'a simulated stand-in has no environment')
  }
  if (p.protocol === 'tcp') {
    set('protocol', 'tcp')
    if (p.kind === 'address') loss(s.ports[0]?.at ?? s.expose[0]?.at ?? s.at.keyAt(), 'changed', `protocol: tcp, as ${p.listens} is ${TCP_PORTS[p.listens!] ?? 'not HTTP'}'s port: callers get $${envPrefix(p.name)}_HOST, _PORT and _ADDR`)
  }

  const replicas = s.replicas
  if (replicas) {
    if (replicas.value === 0) loss(replicas.at, 'dropped', 'replicas: 0 starts no container in compose; the mesh starts every service (give it profiles: to leave it out of a plain mesh up)')
    else if (p.kind === 'address') loss(replicas.at, 'dropped', 'an address is one instance, whatever runs behind it')
    else if (replicas.value > 1) set('replicas', replicas.value)
  }

  const deps = s.dependsOn.map((d) => {
    const target = plans.find((o) => o.service.name === d.name)!
    let condition = d.condition
    if (condition === 'service_completed_successfully' && target.kind !== 'command') {
      loss(d.at, 'changed', `"${d.name}" is ${target.kind === 'address' ? 'an address' : 'simulated'} here and never completes: waited for until it is started instead`)
      condition = 'service_started'
    }
    if (d.restart) loss(d.restart, 'dropped', 'the mesh does not restart a service when its dependency restarts')
    return {name: names.get(d.name)!, condition, required: d.required}
  })
  if (deps.length > 0) {
    // The mesh's list form waits for health: compose's short form (started) is written out.
    if (deps.every((d) => d.condition === 'service_healthy' && d.required)) set('dependsOn', deps.map((d) => d.name), true)
    else {
      const node = set('dependsOn', Object.fromEntries(deps.map((d) => [d.name, d.required ? {condition: d.condition} : {condition: d.condition, required: false}]))) as YAMLMap
      for (const item of node.items) (item.value as YAMLMap).flow = true
    }
  }

  const health = healthBlock(p, loss)
  if (health) set('health', health, true)
  if (s.stopGracePeriodMs && p.kind !== 'address' && s.stopGracePeriodMs.value !== 10_000) set('stopGracePeriod', formatDuration(s.stopGracePeriodMs.value))

  const restart = s.restart ?? s.deployRestart
  const completes = plans.some((o) => o.service.dependsOn.some((d) => d.name === s.name && d.condition === 'service_completed_successfully'))
  if (p.kind === 'command') {
    if (restart) {
      const node = set('restart', restart.value) as Scalar
      if (restart.value === 'no') node.type = Scalar.QUOTE_DOUBLE
    } else if (completes) {
      // compose's default; a job others wait on must be allowed to finish.
      ;(set('restart', 'no') as Scalar).type = Scalar.QUOTE_DOUBLE
    } else {
      loss(s.at.keyAt(), 'changed', 'compose restarts nothing by default (restart: no); the mesh restarts a process whenever it exits (restart: always): write restart: "no" to keep compose\'s')
    }
  } else if (restart && p.kind === 'address') loss(restart.at, 'changed', 'the container\'s: it is in the docker run line above the service')
  else if (restart) loss(restart.at, 'dropped', 'a simulated stand-in serves until mesh down')

  if (s.profiles) set('profiles', s.profiles.value, true)

  for (const {key, at} of s.unmapped) {
    const reason = p.kind === 'address'
      ? `the container's ${key}: not in the docker run line above; add it there if the container needs it`
      : (SERVICE_REASONS[key.split('.')[0]] ?? `a container setting (${key}) with no meaning for a process on this machine`)
    loss(at, 'dropped', reason)
  }
  if (p.kind === 'command' && s.build) loss(s.build.at, 'changed', `the mesh builds no images: the command runs on this machine${isUrl(s.build.value) ? '' : ` in ${rel(s.build.value)}`}, with what is installed here`)
  if (p.kind === 'command' && s.image && !s.build) loss(s.image.at, 'changed', `the command ran inside image ${s.image.value}; here it runs on this machine, with what is installed here (image: keeps it for mesh export)`)
  if (p.kind === 'simulate') {
    const why = options.simulateImages ? '--simulate-images' : 'compose names no port it listens on, so no address: can be given'
    loss((s.image ?? s.build)?.at ?? s.at.keyAt(), 'changed', `a simulated HTTP stand-in (${why}): it answers requests with latency and errors from simulate:, not as the container would`)
  }
  return out
}

/**
 * compose's image as the service's `image:`, which `mesh up` ignores and `mesh export`
 * runs in a cluster; a name the mesh would refuse (an unset variable left in it) is said instead.
 */
function image(s: ComposeService, set: (key: string, value: unknown) => unknown, loss: LossAt): void {
  if (!s.image) return
  if (CONTAINER_IMAGE.test(s.image.value)) set('image', s.image.value)
  else loss(s.image.at, 'dropped', `image ${s.image.value} is not an image reference mesh.yaml takes (name[:tag][@digest]): write image: by hand for mesh export`)
}

/** The directory the command runs in (relative to the compose file), from working_dir, a bind mount or the build context. */
function workingDirectory(s: ComposeService, loss: LossAt): string | undefined {
  const build = s.build && !isUrl(s.build.value) ? s.build.value : undefined
  const dir = s.workingDir
  if (dir && !dir.value.startsWith('/')) return dir.value
  if (dir) {
    const mount = bindMounts(s).find((m) => dir.value === m.target || dir.value.startsWith(`${m.target.replace(/\/$/, '')}/`))
    if (mount) {
      const rest = dir.value.slice(mount.target.replace(/\/$/, '').length).replace(/^\//, '')
      loss(dir.at, 'changed', `${dir.value} is where compose mounts ${mount.source}: the command runs there`)
      return path.posix.join(mount.source, rest)
    }
    loss(dir.at, 'dropped', `${dir.value} is a directory inside the container${build ? `: the command runs in the build context, ${build}` : ': the command runs beside mesh.yaml'}`)
  }
  return build
}

/** `./src:/app` and `{type: bind, source, target}` volumes: where the container saw this machine's files. */
function bindMounts(s: ComposeService): Array<{source: string; target: string}> {
  const volumes = s.unmapped.find((u) => u.key === 'volumes')?.at
  if (!volumes) return []
  return volumes.items().flatMap((item) => {
    if (item.kind === 'scalar' && typeof item.value === 'string') {
      const [source, target] = item.value.split(':')
      return target && /^[./~]/.test(source) ? [{source, target}] : []
    }
    const type = item.child('type')?.value
    const source = item.child('source')?.value
    const target = item.child('target')?.value
    return type === 'bind' && typeof source === 'string' && typeof target === 'string' ? [{source, target}] : []
  })
}

/** health: from the healthcheck; an HTTP GET to the instance's own port becomes a path check. */
function healthBlock(p: Plan, loss: LossAt): Record<string, unknown> | undefined {
  const h = p.service.healthcheck
  if (!h) return undefined
  if (p.kind !== 'command') {
    loss(h.at, p.kind === 'address' ? 'changed' : 'dropped', p.kind === 'address' ? 'ran inside the container: the mesh checks the address by TCP connect (or give it health: {command: ...} that runs on this machine)' : 'a simulated stand-in answers its own health check')
    return undefined
  }
  const out: Record<string, unknown> = {}
  const test = h.test?.value
  if (h.disable || test?.kind === 'NONE') loss(h.test?.at ?? h.at, 'changed', "compose checks nothing; the mesh checks that the instance accepts connections on its port (it has no 'none')")
  else if (test) {
    const line = test.kind === 'CMD-SHELL' ? test.args[0] : test.args.map(shellWord).join(' ')
    const httpPath = ownHttpGet(line, p.listens)
    if (httpPath !== undefined) out.path = httpPath
    else out.command = line
  } else loss(h.at, 'dropped', "no test: the image's own HEALTHCHECK, which the mesh cannot see; it checks that the instance accepts connections")
  if (h.interval) out.interval = positive(h.interval.value, h.interval.at, loss, 'interval')
  if (h.timeout) out.timeout = positive(h.timeout.value, h.timeout.at, loss, 'timeout')
  if (h.retries) {
    if (h.retries.value >= 1) out.unhealthyThreshold = h.retries.value
    else loss(h.retries.at, 'dropped', 'retries: 0; the mesh counts at least one failure (unhealthyThreshold: 3 by default)')
  }
  for (const d of [h.startPeriod, h.startInterval]) {
    if (d) loss(d.at, 'changed', 'not needed: until an instance first passes, the mesh probes it every 100 ms and counts no failure against it')
  }
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key]
  return Object.keys(out).length > 0 ? out : undefined
}

function positive(ms: number, at: At, loss: LossAt, what: string): string | undefined {
  if (ms > 0) return formatDuration(ms)
  loss(at, 'dropped', `${what} 0 is compose's default; the mesh's default (1s) holds`)
  return undefined
}

/**
 * The path of a `curl`/`wget` GET to this instance's own port (`curl -f http://localhost:3000/health || exit 1`),
 * which the mesh's own HTTP check does as well, wherever the instance listens.
 */
export function ownHttpGet(line: string, listens: number | undefined): string | undefined {
  const m = /^(?:curl|wget)\s[^|;&`$()]*?\bhttp:\/\/(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(\/[^\s'"|;&]*)?['"]?(?:\s+-\S+)*\s*(?:\|\|\s*exit\s+1)?\s*$/.exec(line.trim())
  if (!m) return undefined
  const port = m[1] === undefined ? 80 : Number(m[1])
  return port === listens ? (m[2] ?? '/') : undefined
}

/** The comment above a service: how to run what the mesh does not, and the keys not carried over. */
function serviceComment(p: Plan, project: ComposeProject, rel: (p: string) => string): string | undefined {
  const lines: string[] = []
  const s = p.service
  if (p.kind === 'address') {
    const what = s.image ? `image ${s.image.value}` : `the image built from ${s.build!.value}`
    lines.push(` ${p.name}: ${what}, which the mesh does not run. Start it with:`)
    if (!s.image && s.build) lines.push(`   docker build -t ${p.name} ${isUrl(s.build.value) ? s.build.value : rel(s.build.value)}`)
    lines.push(`   ${dockerRun(p, rel)}`)
  }
  const dropped = [...new Set(s.unmapped.map((u) => u.key.split('.')[0]))]
  if (dropped.length > 0) lines.push(` not carried over from ${path.basename(project.file)}: ${dropped.join(', ')}`)
  return lines.length > 0 ? lines.join('\n') : undefined
}

function dockerRun(p: Plan, rel: (p: string) => string): string {
  const s = p.service
  const words = ['docker', 'run', '-d', '--rm', '--name', p.name]
  for (const [host, container] of p.publish) words.push('-p', `127.0.0.1:${host}:${container}`)
  for (const f of s.envFiles) if (f.value.present) words.push('--env-file', rel(f.value.path))
  for (const {value: [name, value]} of s.environment) words.push('-e', shellWord(value === undefined ? name : `${name}=${value}`))
  const restart = s.restart?.value ?? s.deployRestart?.value
  if (restart && restart !== 'no') words.push('--restart', restart)
  if (s.stopGracePeriodMs) words.push('--stop-timeout', String(Math.ceil(s.stopGracePeriodMs.value / 1000)))
  words.push(s.image?.value ?? p.name)
  const args = s.command?.value
  if (args) words.push('shell' in args ? args.shell : args.args.map(shellWord).join(' '))
  return words.join(' ')
}

function isUrl(context: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context.startsWith('git@')
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const TOP_REASONS: Record<string, string> = {
  version: 'obsolete: compose ignores it too',
  include: 'other compose files: import each with mesh import compose and join the services by hand',
  networks: 'the mesh has one network: every service reaches the others through its own sidecar, by name or $<DEP>_URL',
  volumes: 'processes the mesh runs use this machine\'s files directly; named volumes have no counterpart',
  secrets: 'no secret store: give the values through env: or envFile:',
  configs: 'no config store: processes read this machine\'s files directly',
  models: 'AI models have no counterpart in mesh.yaml',
}

const SERVICE_REASONS: Record<string, string> = {
  volumes: 'processes the mesh runs use this machine\'s files directly; volumes have no counterpart',
  networks: 'the mesh has one network: services reach each other through their sidecars ($<DEP>_URL, or HTTP_PROXY by name)',
  network_mode: 'the mesh has one network: services reach each other through their sidecars',
  links: 'services reach their dependencies through their sidecars: depends_on says which',
  external_links: 'services reach their dependencies through their sidecars: depends_on says which',
  secrets: 'no secret store: give the values through env: or envFile:',
  configs: 'no config store: processes read this machine\'s files directly',
  build: 'the mesh builds no images',
  container_name: 'instances are named by the mesh (service-version-index)',
  hostname: 'instances are named by the mesh (service-version-index)',
  user: 'processes run as the user running mesh up',
  deploy: 'deploy settings other than replicas and restart_policy have no counterpart (mesh rollout and mesh canary deploy versions)',
  healthcheck: 'the healthcheck could not be read',
  labels: 'labels have no counterpart in mesh.yaml',
  logging: 'each instance logs to a file of its own (mesh logs)',
  extends: 'read it into this service by hand: import does not follow extends',
  develop: 'compose watch: mesh up --watch restarts a service when files under its watch: paths change',
}
