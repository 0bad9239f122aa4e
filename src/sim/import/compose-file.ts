// Reading a compose file (the Compose Specification) for `mesh import compose`: the YAML
// with every node's line:column, checked with mesh.yaml's own checkers so a bad compose file
// is reported as a bad mesh.yaml is (`file:line:column path: what was expected`).
//
//   compose.yaml ──parseDocument──▶ AST ──${VAR} (structural values only)──▶ ComposeProject | ConfigError
//
// Values the mesh substitutes itself when it reads mesh.yaml (environment, command,
// entrypoint, healthcheck.test) are kept as written, `${VAR}` and `$$` included: mesh.yaml
// reads them with compose's syntax. The rest (ports, durations, replicas…) is substituted
// here, from the shell and the .env beside the compose file, as `docker compose config` does.

import {existsSync} from 'node:fs'
import path from 'node:path'
import {LineCounter, parseDocument} from 'yaml'
import {readSourceFile} from '../config/load-config.js'
import {SourceError} from './source-error.js'
import {At, array, bool, checker, describeNode, duplicateKeys, enumOf, int, oneOf, Report, scalar, str, text, type Checker} from '../config/checker.js'
import {suggestion} from '../config/did-you-mean.js'
import {parseDuration} from '../config/duration.js'
import {interpolateDocument, substitutable, variablesFor} from '../config/interpolate.js'
import type {ConfigIssue, DependencyCondition} from '../config/types.js'

/** A value and where it was written (losses and notes point there). */
export interface Placed<T> {
  value: T
  at: At
}

/** `command:` and `entrypoint:` as written: a string (compose splits it as a shell would) or a list of arguments. */
export type ComposeCommand = {shell: string} | {args: string[]}

export interface ComposePort {
  /** The port on this machine (`published`); none: compose picks one. */
  host?: number
  /** The port the container listens on (`target`). */
  container: number
  protocol: string
  appProtocol?: string
  hostIp?: string
  /** Written as a range (8000-8010): only its first port is read. */
  range: boolean
  at: At
}

export interface ComposeHealthcheck {
  /** ['CMD', …], ['CMD-SHELL', cmd] (a string is CMD-SHELL), ['NONE'] */
  test?: Placed<{kind: 'CMD' | 'CMD-SHELL' | 'NONE'; args: string[]}>
  disable: boolean
  interval?: Placed<number>
  timeout?: Placed<number>
  retries?: Placed<number>
  startPeriod?: Placed<number>
  startInterval?: Placed<number>
  at: At
}

export interface ComposeDependency {
  name: string
  condition: DependencyCondition
  required: boolean
  /** `restart: true`: compose restarts this service when the dependency is. */
  restart?: At
  at: At
}

export interface ComposeService {
  name: string
  at: At
  image?: Placed<string>
  /** build: a local directory (its path as written) or a URL. */
  build?: Placed<string>
  command?: Placed<ComposeCommand>
  entrypoint?: Placed<ComposeCommand>
  /** In file order; a name without a value comes from the shell running the container. */
  environment: Array<Placed<[string, string | undefined]>>
  envFiles: Array<Placed<{path: string; required: boolean; present: boolean}>>
  dependsOn: ComposeDependency[]
  healthcheck?: ComposeHealthcheck
  profiles?: Placed<string[]>
  restart?: Placed<string>
  /** deploy.replicas, or the older `scale:`. */
  replicas?: Placed<number>
  /** deploy.restart_policy, as a compose restart value (`on-failure:3`). */
  deployRestart?: Placed<string>
  stopGracePeriodMs?: Placed<number>
  workingDir?: Placed<string>
  ports: ComposePort[]
  expose: Array<Placed<number>>
  /** Keys read but not mapped (volumes, networks, user…), and deploy's other keys: each one is a loss. */
  unmapped: Array<{key: string; at: At}>
}

export interface ComposeProject {
  file: string
  dir: string
  name?: Placed<string>
  services: ComposeService[]
  /** Top-level keys other than services and name (volumes, networks, secrets…). */
  unmapped: Array<{key: string; at: At}>
  /** Values substituted here (not left for the mesh to substitute), with what they became. */
  substituted: Array<{at: At; written: string; value: string}>
  /** Warnings met reading it (an unset variable). */
  warnings: ConfigIssue[]
}

/** The Compose Specification's service keys that import reads. */
const READ_KEYS = [
  'image', 'build', 'command', 'entrypoint', 'environment', 'env_file', 'depends_on', 'healthcheck', 'profiles', 'restart',
  'deploy', 'scale', 'stop_grace_period', 'working_dir', 'ports', 'expose',
] as const
/** Every other service key of the Compose Specification: valid, and reported as not carried over. */
const OTHER_KEYS = [
  'annotations', 'attach', 'blkio_config', 'cap_add', 'cap_drop', 'cgroup', 'cgroup_parent', 'configs', 'container_name', 'cpu_count',
  'cpu_percent', 'cpu_shares', 'cpu_quota', 'cpu_period', 'cpu_rt_period', 'cpu_rt_runtime', 'cpus', 'cpuset', 'credential_spec', 'develop',
  'device_cgroup_rules', 'devices', 'dns', 'dns_opt', 'dns_search', 'domainname', 'extends', 'external_links', 'extra_hosts', 'gpus',
  'group_add', 'hostname', 'init', 'ipc', 'isolation', 'label_file', 'labels', 'links', 'logging', 'mac_address', 'mem_limit',
  'mem_reservation', 'mem_swappiness', 'memswap_limit', 'models', 'network_mode', 'networks', 'oom_kill_disable', 'oom_score_adj', 'pid',
  'pids_limit', 'platform', 'post_start', 'pre_stop', 'privileged', 'provider', 'pull_policy', 'pull_refresh_after', 'read_only', 'runtime',
  'secrets', 'security_opt', 'shm_size', 'stdin_open', 'stop_signal', 'storage_opt', 'sysctls', 'tmpfs', 'tty', 'ulimits', 'use_api_socket',
  'user', 'userns_mode', 'uts', 'volumes', 'volumes_from',
]
const SERVICE_KEYS = [...READ_KEYS, ...OTHER_KEYS]
const TOP_KEYS = ['version', 'name', 'include', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models']

/** Values compose substitutes that the mesh substitutes too, with the same syntax: kept as written. */
function keptForMesh(where: ReadonlyArray<string | number>): boolean {
  return where[0] === 'services' && (where[2] === 'environment' || where[2] === 'command' || where[2] === 'entrypoint' || (where[2] === 'healthcheck' && where[3] === 'test'))
}

/** Read and check a compose file; throws MESH_CONFIG_NOT_FOUND, or ConfigError with every problem at its line. */
export async function readComposeFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ComposeProject> {
  const absolute = path.resolve(file)
  const source = await readSourceFile(absolute, {
    message: `no compose file at ${absolute}`,
    hints: ['Name it: `mesh import compose path/to/compose.yaml` (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml here).'],
  })
  const read = parseCompose(source, absolute, env)
  if ('issues' in read) throw new SourceError(read.issues, `Fix these in ${path.basename(absolute)} (\`docker compose config\` reads it the same way), then import it again.`)
  return read
}

/** The compose file names `docker compose` looks for, in its order. */
export const COMPOSE_FILE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml']

/** The compose file in `dir` (compose's own order), or the first name when there is none (its error then says so). */
export function defaultComposeFile(dir: string): string {
  return path.join(dir, COMPOSE_FILE_NAMES.find((name) => existsSync(path.join(dir, name))) ?? COMPOSE_FILE_NAMES[0])
}

/** Check a compose file's text (`file` absolute): the project, or every issue (errors, and the warnings beside them). */
export function parseCompose(source: string, file: string, env: NodeJS.ProcessEnv = process.env): ComposeProject | {issues: ConfigIssue[]} {
  const lineCounter = new LineCounter()
  // merge: compose files share blocks with `<<: *defaults`.
  const doc = parseDocument(source, {lineCounter, prettyErrors: false, uniqueKeys: false, merge: true})
  const report = new Report(file, doc, lineCounter)
  for (const e of [...doc.errors, ...doc.warnings]) {
    const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
    report.issues.push({file, ...report.positionOfOffset(e.pos[0]), path: '', message: message[0].toLowerCase() + message.slice(1), severity: doc.errors.includes(e as never) ? 'error' : 'warning'})
  }
  for (const key of duplicateKeys(doc)) report.add('error', key, '', 'map keys must be unique')
  if (report.errorCount > 0) return {issues: sortIssues(report.issues)}

  const dir = path.dirname(file)
  const structural = substitutable(doc).filter((s) => !keptForMesh(s.path))
  const written = structural.map((s) => String(s.node.value))
  interpolateDocument(doc, report, variablesFor(dir, env), structural)

  const root = report.root()
  if (root.kind !== 'map') {
    root.expected('a compose file: a mapping with services:')
    return {issues: sortIssues(report.issues)}
  }
  const project: ComposeProject = {file, dir, services: [], unmapped: [], substituted: [], warnings: []}
  for (const [key, at] of fields(root)) {
    if (key.startsWith('x-')) continue
    if (key === 'services') continue
    if (key === 'name') {
      const name = str({nonEmpty: true})(at)
      if (name !== undefined) project.name = {value: name, at}
    } else if (TOP_KEYS.includes(key)) project.unmapped.push({key, at})
    else at.errorAtKey(`unknown key "${key}"${suggestion(key, TOP_KEYS) || `; a compose file has ${TOP_KEYS.join(', ')} and x- extensions`}`)
  }
  const services = root.child('services')
  if (!services || services.kind !== 'map' || fields(services).size === 0) {
    ;(services ?? root).expected('services: a mapping of service names to their definitions')
  } else {
    for (const [name, at] of fields(services)) {
      if (!/^[a-zA-Z0-9._-]+$/.test(name)) at.errorAtKey(`expected a service name of letters, digits, ".", "_" and "-", got "${name}"`)
      else {
        const service = readService(name, at, dir)
        if (service) project.services.push(service)
      }
    }
    const declared = [...fields(services).keys()]
    for (const service of project.services) {
      for (const dep of service.dependsOn) {
        if (!declared.includes(dep.name)) dep.at.errorAtKey(`service "${dep.name}" is not in this file${suggestion(dep.name, declared)}`)
      }
    }
  }
  structural.forEach((s, i) => {
    if (String(s.node.value) !== written[i]) project.substituted.push({at: report.locate(s.path), written: written[i], value: String(s.node.value)})
  })
  if (report.errorCount > 0) return {issues: sortIssues(report.issues)}
  project.warnings = sortIssues(report.issues)
  return project
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.map((issue, i) => ({issue, i})).sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i).map(({issue}) => issue)
}

/**
 * A mapping's keys in file order, `<<: *anchor` merges included (the mapping's own keys win,
 * then the first merged one), as compose reads them.
 */
export function fields(at: At): Map<string, At> {
  const own = new Map<string, At>()
  const merged: At[] = []
  for (const {key, at: child} of at.entries()) {
    if (key === '<<') merged.push(...(child.kind === 'seq' ? child.items() : [child]))
    else if (!own.has(key)) own.set(key, child)
  }
  const out = new Map<string, At>()
  for (const source of merged) {
    if (source.kind !== 'map') {
      source.expected('a mapping to merge (<<: *anchor)')
      continue
    }
    for (const [key, child] of fields(source)) if (!out.has(key) && !own.has(key)) out.set(key, child)
  }
  for (const [key, child] of own) out.set(key, child)
  return out
}

// ---------------------------------------------------------------------------------
// Small values

/** Go's durations, as compose takes them: 1m30s, 500ms, 10s; µs and ns round up to a millisecond. */
const composeDuration = scalar<number>('a duration like 10s, 1m30s or 500ms', (v) => {
  if (typeof v !== 'string') return undefined
  const fine = /^(.*?)(\d+(?:\.\d+)?)(us|µs|ns)$/.exec(v.trim())
  if (!fine) return parseDuration(v)
  const rest = fine[1] === '' ? 0 : parseDuration(fine[1])
  const ms = Number(fine[2]) / (fine[3] === 'ns' ? 1e6 : 1e3)
  return rest === undefined ? undefined : rest + Math.ceil(ms)
})

const command: Checker<ComposeCommand> = oneOf('a command: a string, or a list of its arguments', {
  scalar: checker<ComposeCommand>('a string', (at) => {
    const v = str()(at)
    return v === undefined ? undefined : {shell: v}
  }),
  seq: checker<ComposeCommand>('a list of arguments', (at) => {
    const args = array(text())(at)
    return args === undefined ? undefined : {args}
  }),
})

/** A whole number, or one written as a string ("2"), as compose's schema takes counts. */
function count(expected: string): Checker<number> {
  return scalar(expected, (v) => {
    const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined
  })
}

const PORT = int({min: 1, max: 65535, expected: 'a port between 1 and 65535'})
const portNumber = (v: string): number | undefined => (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? Number(v) : undefined)

// ---------------------------------------------------------------------------------
// A service

function readService(name: string, at: At, dir: string): ComposeService | undefined {
  if (at.kind !== 'map' && at.kind !== 'nothing') return at.expected('a service definition (a mapping)')
  const keys = fields(at)
  const service: ComposeService = {name, at, environment: [], envFiles: [], dependsOn: [], ports: [], expose: [], unmapped: []}
  for (const [key, child] of keys) {
    if (key.startsWith('x-')) continue
    if (!SERVICE_KEYS.includes(key)) {
      child.errorAtKey(`unknown key "${key}"${suggestion(key, SERVICE_KEYS) || ' (not in the Compose Specification)'}`)
      continue
    }
    if (!(READ_KEYS as readonly string[]).includes(key)) {
      service.unmapped.push({key, at: child})
      continue
    }
    readKey(service, key as (typeof READ_KEYS)[number], child, dir)
  }
  // compose's own rule: a container comes from an image or is built (a provider: service has neither).
  if (!keys.has('image') && !keys.has('build') && !keys.has('provider')) return at.errorAtKey(`service "${name}" has neither an image nor a build context; compose needs one (image: or build:)`)
  return service
}

function placed<T>(value: T | undefined, at: At): Placed<T> | undefined {
  return value === undefined ? undefined : {value, at}
}

function readKey(service: ComposeService, key: (typeof READ_KEYS)[number], at: At, dir: string): void {
  switch (key) {
    case 'image':
      service.image = placed(str({nonEmpty: true})(at), at)
      return
    case 'build':
      if (at.kind === 'map') {
        const context = fields(at).get('context')
        service.build = context ? placed(str({nonEmpty: true})(context), context) : {value: '.', at}
      } else service.build = placed(str({nonEmpty: true})(at), at)
      return
    case 'command':
    case 'entrypoint':
      // `command: null` (or []) resets an inherited command in compose: nothing to run.
      if (at.kind !== 'nothing' && !(at.kind === 'seq' && at.items().length === 0)) service[key] = placed(command(at), at)
      return
    case 'environment':
      service.environment = environment(at)
      return
    case 'env_file':
      service.envFiles = envFiles(at, dir)
      return
    case 'depends_on':
      service.dependsOn = dependsOn(at)
      return
    case 'healthcheck':
      service.healthcheck = healthcheck(at)
      return
    case 'profiles':
      service.profiles = placed(array(str({pattern: /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, expected: 'a profile name (letters, digits, then also _ . -)'}))(at), at)
      return
    case 'restart':
      service.restart = placed(str({pattern: /^(no|always|unless-stopped|on-failure(:\d+)?)$/, expected: 'one of no, always, on-failure, on-failure:N, unless-stopped'})(at), at)
      return
    case 'scale':
      service.replicas ??= placed(count('a number of containers (0 or more)')(at), at)
      return
    case 'deploy':
      deploy(service, at)
      return
    case 'stop_grace_period':
      service.stopGracePeriodMs = placed(composeDuration(at), at)
      return
    case 'working_dir':
      service.workingDir = placed(str({nonEmpty: true})(at), at)
      return
    case 'ports':
      if (at.kind !== 'seq') at.expected('a list of ports')
      for (const item of at.items()) service.ports.push(...port(item))
      return
    case 'expose':
      if (at.kind !== 'seq') {
        at.expected('a list of ports')
        return
      }
      for (const item of at.items()) {
        const m = item.kind === 'scalar' ? /^(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(String(item.value)) : null
        const first = m ? portNumber(m[1]) : undefined
        if (first === undefined) item.expected('a port like 3000, 3000/tcp or 3000-3005')
        else service.expose.push({value: first, at: item})
      }
  }
}

function environment(at: At): Array<Placed<[string, string | undefined]>> {
  const out: Array<Placed<[string, string | undefined]>> = []
  if (at.kind === 'map') {
    for (const [name, value] of fields(at)) {
      if (value.kind === 'nothing') out.push({value: [name, undefined], at: value})
      else {
        const v = text()(value)
        if (v !== undefined) out.push({value: [name, v], at: value})
      }
    }
  } else if (at.kind === 'seq') {
    for (const item of at.items()) {
      const entry = str({nonEmpty: true, expected: 'NAME=VALUE or NAME'})(item)
      if (entry === undefined) continue
      const eq = entry.indexOf('=')
      out.push({value: eq < 0 ? [entry, undefined] : [entry.slice(0, eq), entry.slice(eq + 1)], at: item})
    }
  } else if (at.kind !== 'nothing') at.expected('a mapping of NAME: value, or a list of NAME=VALUE')
  for (const {value, at: where} of out) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value[0])) where.error(`"${value[0]}" is not an environment variable name the mesh can set (letters, digits and _)`)
  }
  return out
}

function envFiles(at: At, dir: string): Array<Placed<{path: string; required: boolean; present: boolean}>> {
  const items = at.kind === 'seq' ? at.items() : [at]
  const out: Array<Placed<{path: string; required: boolean; present: boolean}>> = []
  for (const item of items) {
    let file: string | undefined
    let required = true
    if (item.kind === 'map') {
      const f = fields(item)
      const p = f.get('path')
      file = p ? str({nonEmpty: true})(p) : item.error('missing required key "path"')
      const r = f.get('required')
      if (r) required = bool()(r) ?? true
    } else file = str({nonEmpty: true, expected: 'a file name, or {path, required}'})(item)
    if (file === undefined) continue
    // As compose: a missing env_file is an error unless it says required: false.
    const present = existsSync(path.resolve(dir, file))
    if (required && !present) {
      item.error(`no such file: ${path.resolve(dir, file)} (compose needs it too; write {path: ${file}, required: false} if it is optional)`)
      continue
    }
    out.push({value: {path: file, required, present}, at: item})
  }
  return out
}

const CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'] as const

function dependsOn(at: At): ComposeDependency[] {
  if (at.kind === 'seq') {
    // The short form waits for each to start, not to be healthy.
    return at.items().flatMap((item) => {
      const name = str({nonEmpty: true})(item)
      return name === undefined ? [] : [{name, condition: 'service_started' as const, required: true, at: item}]
    })
  }
  if (at.kind !== 'map') return at.expected('a list of service names, or a mapping of service names to {condition: ...}') ?? []
  const out: ComposeDependency[] = []
  for (const [name, entry] of fields(at)) {
    if (entry.kind !== 'map') {
      entry.expected(`{condition: ${CONDITIONS.join(' | ')}}`)
      continue
    }
    const f = fields(entry)
    for (const [key, child] of f) if (!['condition', 'required', 'restart'].includes(key) && !key.startsWith('x-')) child.errorAtKey(`unknown key "${key}"${suggestion(key, ['condition', 'required', 'restart'])}`)
    const conditionAt = f.get('condition')
    const condition = conditionAt ? enumOf(CONDITIONS)(conditionAt) : entry.error('missing required key "condition"')
    const requiredAt = f.get('required')
    const required = requiredAt ? bool()(requiredAt) : true
    const restartAt = f.get('restart')
    if (condition !== undefined && required !== undefined) {
      out.push({name, condition, required, at: entry.keyAt(), ...(restartAt && restartAt.value !== false && restartAt.value !== 'false' ? {restart: restartAt} : {})})
    }
  }
  return out
}

function healthcheck(at: At): ComposeHealthcheck | undefined {
  if (at.kind !== 'map') return at.expected('a mapping (test, interval, timeout, retries, start_period)')
  const f = fields(at)
  const known = ['test', 'disable', 'interval', 'timeout', 'retries', 'start_period', 'start_interval']
  for (const [key, child] of f) if (!known.includes(key) && !key.startsWith('x-')) child.errorAtKey(`unknown key "${key}"${suggestion(key, known) || `; expected one of ${known.join(', ')}`}`)
  const out: ComposeHealthcheck = {disable: false, at}
  const testAt = f.get('test')
  if (testAt) {
    if (testAt.kind === 'scalar') {
      const shell = str({nonEmpty: true})(testAt)
      if (shell !== undefined) out.test = {value: {kind: 'CMD-SHELL', args: [shell]}, at: testAt}
    } else {
      const list = array(text(), {min: 1})(testAt)
      if (list) {
        const kind = list[0]
        if (kind === 'NONE') out.test = {value: {kind, args: []}, at: testAt}
        else if ((kind === 'CMD' || kind === 'CMD-SHELL') && list.length > 1) out.test = {value: {kind, args: list.slice(1)}, at: testAt}
        else testAt.child(0)!.error(`expected ["CMD", program, args...], ["CMD-SHELL", "a shell command"] or ["NONE"], got ${describeNode(testAt.child(0)!.node)}${list.length === 1 && kind !== 'NONE' ? ' with nothing after it' : ''}`)
      }
    }
  }
  const disable = f.get('disable')
  if (disable) out.disable = bool()(disable) ?? false
  const duration = (key: string) => {
    const child = f.get(key)
    return child ? placed(composeDuration(child), child) : undefined
  }
  out.interval = duration('interval')
  out.timeout = duration('timeout')
  out.startPeriod = duration('start_period')
  out.startInterval = duration('start_interval')
  const retries = f.get('retries')
  if (retries) out.retries = placed(count('a number of retries (0 or more)')(retries), retries)
  return out
}

// compose's restart_policy conditions as restart values.
const DEPLOY_RESTART: Record<string, string> = {none: 'no', 'on-failure': 'on-failure', any: 'always'}

function deploy(service: ComposeService, at: At): void {
  if (at.kind !== 'map') {
    at.expected('a mapping (replicas, restart_policy, resources…)')
    return
  }
  for (const [key, child] of fields(at)) {
    if (key === 'replicas') service.replicas = placed(count('a number of replicas (0 or more)')(child), child)
    else if (key === 'restart_policy' && child.kind === 'map') {
      const f = fields(child)
      const conditionAt = f.get('condition')
      const condition = conditionAt ? enumOf(['none', 'on-failure', 'any'])(conditionAt) : 'any'
      const attemptsAt = f.get('max_attempts')
      const attempts = attemptsAt ? count('a number of attempts (0 or more)')(attemptsAt) : undefined
      if (condition !== undefined) {
        const value = condition === 'on-failure' && attempts !== undefined ? `on-failure:${attempts}` : DEPLOY_RESTART[condition]
        service.deployRestart = {value, at: conditionAt ?? child}
      }
      for (const [other, where] of f) if (other !== 'condition' && other !== 'max_attempts') service.unmapped.push({key: `deploy.restart_policy.${other}`, at: where})
    } else if (!key.startsWith('x-')) service.unmapped.push({key: `deploy.${key}`, at: child})
  }
}

/** Short syntax `[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]` (ranges as `8000-8010`), a bare number, or the long syntax. */
function port(at: At): ComposePort[] {
  if (at.kind === 'map') {
    const f = fields(at)
    const targetAt = f.get('target')
    if (!targetAt) return at.error('missing required key "target"') ?? []
    const target = targetAt.kind === 'scalar' ? portNumber(String(targetAt.value)) : undefined
    if (target === undefined) return targetAt.expected('a port between 1 and 65535') ?? []
    const publishedAt = f.get('published')
    let host: number | undefined
    if (publishedAt && publishedAt.kind === 'scalar') {
      const range = /^(\d+)(?:-(\d+))?$/.exec(String(publishedAt.value))
      host = range ? portNumber(range[1]) : undefined
      if (host === undefined) return publishedAt.expected('a port between 1 and 65535, or a range like 8000-8010') ?? []
    }
    const textOf = (key: string) => {
      const child = f.get(key)
      return child ? str()(child) : undefined
    }
    return [{host, container: target, protocol: textOf('protocol') ?? 'tcp', appProtocol: textOf('app_protocol'), hostIp: textOf('host_ip'), range: /-/.test(String(publishedAt?.value ?? '')), at}]
  }
  if (at.kind !== 'scalar') return at.expected('a port: "8080:80", 3000, or {target, published}') ?? []
  if (typeof at.value === 'number') {
    const p = PORT(at)
    return p === undefined ? [] : [{container: p, protocol: 'tcp', range: false, at}]
  }
  // HOST_IP: needs its HOST, even empty (127.0.0.1::80): "http:80" is no port.
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d+(?:-\d+)?)?:|(\d+(?:-\d+)?):)?(\d+(?:-\d+)?)(?:\/(\w+))?$/.exec(String(at.value).trim())
  if (!m) return at.expected('a port like "8080:80", "127.0.0.1:8080:80", "3000" or "53:53/udp"') ?? []
  const [, hostIp, hostWithIp, hostAlone, containerPart, protocol] = m
  const hostPart = hostWithIp ?? hostAlone
  const host = hostPart ? portNumber(hostPart.split('-')[0]) : undefined
  const container = portNumber(containerPart.split('-')[0])
  if (container === undefined || (hostPart && host === undefined)) return at.expected('ports between 1 and 65535') ?? []
  return [{host, container, protocol: protocol ?? 'tcp', hostIp: hostIp?.replace(/^\[|\]$/g, ''), range: containerPart.includes('-'), at}]
}
