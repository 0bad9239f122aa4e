// Variables in mesh.yaml's values, as docker compose substitutes them in compose.yaml:
//
//   $VAR  ${VAR}           the variable's value ('' when unset, with a warning)
//   ${VAR:-default}        default when VAR is unset or empty   (${VAR-default}: unset only)
//   ${VAR:?message}        an error when VAR is unset or empty  (${VAR?message}: unset only)
//   ${VAR:+other}          other when VAR is set and not empty  (${VAR+other}: set)
//   $$                     a literal $
//
// Values come from the environment, then from a `.env` file beside mesh.yaml (compose's
// project .env); the environment wins. Only values are substituted, never keys. An
// unquoted value is read again after substitution, so `port: ${PORT:-8080}` is a number.
//
// In `command:` and `health.command`, the variables the mesh gives each instance ($PORT,
// $MESH_*, $<DEP>_URL…, $HTTP_PROXY) are left as written: they have no value until an
// instance starts, and its shell substitutes them there (`node ratings.js $PORT`).
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {type Document, isMap, isScalar, isSeq, parse, Scalar} from 'yaml'
import {eachNode, type Path, type Report} from './checker.js'
import {instanceEnvNames} from './env-names.js'
import {parseEnvFile} from './env-file.js'

export type Lookup = (name: string) => string | undefined

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/

/** How deeply ${…} may nest in defaults (`${A:-${B:-x}}` is 2): far past any real use, far short of the call stack. */
export const MAX_NESTING = 32

export interface Substituted {
  value: string
  /** Variables used without a value and without a default (compose warns of each). */
  unset: string[]
  /** Variables left as written for the instance's shell (`keep`). */
  kept: string[]
}

/**
 * `text` with its variables substituted; throws an Error (its message for the user) for a
 * required one or bad syntax. A variable `keep` names is left as written, `${…}` and all.
 */
export function substitute(text: string, lookup: Lookup, keep: (name: string) => boolean = () => false, depth = 0): Substituted {
  if (depth > MAX_NESTING) throw new Error(`\${…} is nested more than ${MAX_NESTING} deep; a default inside a default this deep is not a real configuration`)
  const unset: string[] = []
  const kept: string[] = []
  let out = ''
  let i = 0
  while (i < text.length) {
    const dollar = text.indexOf('$', i)
    if (dollar < 0) {
      out += text.slice(i)
      break
    }
    out += text.slice(i, dollar)
    const next = text[dollar + 1]
    if (next === '$') {
      out += '$'
      i = dollar + 2
    } else if (next === '{') {
      const end = closingBrace(text, dollar + 2)
      if (end < 0) throw new Error(`"${text.slice(dollar)}" has no closing }; write $$ for a literal $`)
      const name = NAME.exec(text.slice(dollar + 2))?.[0]
      if (name && keep(name)) {
        out += text.slice(dollar, end + 1)
        kept.push(name)
      } else {
        const inner = substituteBraced(text.slice(dollar + 2, end), lookup, keep, depth + 1)
        out += inner.value
        unset.push(...inner.unset)
        kept.push(...inner.kept)
      }
      i = end + 1
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0]
      if (!name) {
        // A $ before anything that cannot start a name stays, as in compose.
        out += '$'
        i = dollar + 1
        continue
      }
      i = dollar + 1 + name.length
      if (keep(name)) {
        out += `$${name}`
        kept.push(name)
        continue
      }
      const value = lookup(name)
      if (value === undefined) unset.push(name)
      out += value ?? ''
    }
  }
  return {value: out, unset, kept}
}

/** The inside of ${…}: a name, then nothing or one of :- - :? ? :+ + and the rest. */
function substituteBraced(inner: string, lookup: Lookup, keep: (name: string) => boolean, depth: number): Substituted {
  const name = NAME.exec(inner)?.[0]
  if (!name) throw new Error(`"\${${inner}}" does not start with a variable name`)
  const rest = inner.slice(name.length)
  const value = lookup(name)
  if (rest === '') return {value: value ?? '', unset: value === undefined ? [name] : [], kept: []}
  const colon = rest.startsWith(':')
  const op = rest[colon ? 1 : 0]
  const word = rest.slice(colon ? 2 : 1)
  // With the colon, an empty value counts as unset.
  const missing = value === undefined || (colon && value === '')
  switch (op) {
    case '-':
      return missing ? substitute(word, lookup, keep, depth) : {value: value!, unset: [], kept: []}
    case '?':
      if (missing) throw new Error(`required variable ${name} is ${value === undefined ? 'not set' : 'empty'}${word ? `: ${word}` : ''}`)
      return {value: value!, unset: [], kept: []}
    case '+':
      return missing ? {value: '', unset: [], kept: []} : substitute(word, lookup, keep, depth)
    default:
      throw new Error(`"\${${inner}}": expected }, :-, -, :?, ?, :+ or + after ${name}`)
  }
}

/** The } that closes a ${ opened before `from`, nested ${…} (in defaults) included. */
function closingBrace(text: string, from: number): number {
  let depth = 1
  for (let i = from; i < text.length; i++) {
    if (text[i] === '{' && text[i - 1] === '$') depth++
    else if (text[i] === '}' && --depth === 0) return i
  }
  return -1
}

/** The environment, then `.env` beside mesh.yaml (compose's project .env); the environment wins. */
export function variablesFor(dir: string, env: NodeJS.ProcessEnv): Lookup {
  const file = path.join(dir, '.env')
  const fromFile = existsSync(file) ? parseEnvFile(readFileSync(file, 'utf8')).vars : {}
  return (name) => env[name] ?? fromFile[name]
}

/**
 * Substitutes every value of the document in place. Problems go to `report` at the value:
 * an error for a required variable or bad syntax, a warning for an unset one.
 */
export function interpolateDocument(doc: Document, report: Report, lookup: Lookup, scalars: Substitutable[] = substitutable(doc)): LeftForInstances {
  const left: LeftForInstances = new Map()
  const forInstance = instanceVariables(doc)
  for (const {node, path: where} of scalars) {
    if (typeof node.value !== 'string') continue
    const service = commandOf(where)
    const keep = service === undefined ? undefined : forInstance(service)
    let result: Substituted
    try {
      result = substitute(node.value, lookup, keep && ((name) => keep.has(name)))
    } catch (error) {
      report.add('error', node, where, (error as Error).message)
      continue
    }
    for (const name of new Set(result.unset)) report.add('warning', node, where, `variable ${name} is not set; using an empty string`, 'unset-variable')
    for (const name of result.kept) {
      const services = left.get(name) ?? new Set()
      left.set(name, services.add(service!))
    }
    node.value = node.type === Scalar.PLAIN ? retyped(result.value) : result.value
    // What was written, for the checkers that keep a number as written (env: 1.10 stays 1.10).
    node.source = result.value
  }
  return left
}

/** A value with a $ in it, and where it is. */
export interface Substitutable {
  node: Scalar
  path: Path
}

/** The values interpolateDocument looks at, in file order: scalars (not keys) with a $ in them. */
export function substitutable(doc: Document): Substitutable[] {
  const out: Substitutable[] = []
  eachNode(doc.contents, (node, path, isKey) => {
    if (!isKey && isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) out.push({node, path: [...path]})
  })
  return out
}

/** Variable → the services whose `command:` or `health.command` leave it for their instances' shells. */
export type LeftForInstances = Map<string, Set<string>>

/** The service whose command (or health check command) this path is: `services.web.command`, `…versions.v1.health.command`. */
function commandOf(where: Path): string | undefined {
  if (where[0] !== 'services' || typeof where[1] !== 'string' || where.at(-1) !== 'command') return undefined
  const rest = where.slice(2, -1)
  if (rest[0] === 'versions') rest.splice(0, 2)
  return rest.length === 0 || (rest.length === 1 && rest[0] === 'health') ? where[1] : undefined
}

/**
 * The variables each service's instances get from the mesh (env-names.ts), read from the
 * document as written (the schema has not checked it yet: what cannot be read adds nothing).
 * Services are indexed once, so a file of many services stays linear.
 */
function instanceVariables(doc: Document): (service: string) => Set<string> {
  let byName: Map<string, unknown> | undefined
  const cache = new Map<string, Set<string>>()
  const scalarText = (node: unknown) => (isScalar(node) && typeof node.value === 'string' ? node.value : undefined)
  return (service) => {
    const known = cache.get(service)
    if (known) return known
    if (!byName) {
      byName = new Map()
      const services = doc.get('services', true)
      if (isMap(services)) for (const pair of services.items) if (scalarText(pair.key) !== undefined && !byName.has(scalarText(pair.key)!)) byName.set(scalarText(pair.key)!, pair.value)
    }
    const node = byName.get(service)
    const dependsOn = isMap(node) ? node.get('dependsOn', true) : undefined
    const deps = isSeq(dependsOn) ? dependsOn.items.map(scalarText) : isMap(dependsOn) ? dependsOn.items.map((p) => scalarText(p.key)) : []
    const names = instanceEnvNames(
      deps
        .filter((d): d is string => d !== undefined)
        .map((name) => {
          const dep = byName!.get(name)
          const protocol = isMap(dep) ? scalarText(dep.get('protocol', true)) : undefined
          return {name, protocol: protocol === 'grpc' || protocol === 'tcp' ? protocol : undefined}
        }),
    )
    cache.set(service, names)
    return names
  }
}

/** An unquoted value as YAML reads it once substituted: `8080` a number, `true` a boolean. */
function retyped(text: string): unknown {
  try {
    const value = parse(text)
    return value === null || typeof value === 'object' ? text : value
  } catch {
    return text
  }
}

/** One line for `mesh validate`: `$PORT (web, api), $CATALOG_URL (web) in command: left for each instance's shell, which the mesh gives them`. */
export function describeLeftForInstances(left: Record<string, string[]>): string | undefined {
  const names = Object.entries(left)
  if (names.length === 0) return undefined
  return `${names.map(([name, services]) => `$${name} (${services.join(', ')})`).join(', ')} in command: left for each instance's shell, which the mesh gives them when it starts one`
}
