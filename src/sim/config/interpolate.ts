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
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {type Document, isMap, isPair, isScalar, isSeq, parse, Scalar, visit} from 'yaml'
import type {Path, Report} from './checker.js'
import {parseEnvFile} from './env-file.js'

export type Lookup = (name: string) => string | undefined

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/

/** How deeply ${…} may nest in defaults (`${A:-${B:-x}}` is 2): far past any real use, far short of the call stack. */
export const MAX_NESTING = 32

export interface Substituted {
  value: string
  /** Variables used without a value and without a default (compose warns of each). */
  unset: string[]
}

/** `text` with its variables substituted; throws an Error (its message for the user) for a required one or bad syntax. */
export function substitute(text: string, lookup: Lookup, depth = 0): Substituted {
  if (depth > MAX_NESTING) throw new Error(`\${…} is nested more than ${MAX_NESTING} deep; a default inside a default this deep is not a real configuration`)
  const unset: string[] = []
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
      const inner = substituteBraced(text.slice(dollar + 2, end), lookup, depth + 1)
      out += inner.value
      unset.push(...inner.unset)
      i = end + 1
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0]
      if (!name) {
        // A $ before anything that cannot start a name stays, as in compose.
        out += '$'
        i = dollar + 1
        continue
      }
      const value = lookup(name)
      if (value === undefined) unset.push(name)
      out += value ?? ''
      i = dollar + 1 + name.length
    }
  }
  return {value: out, unset}
}

/** The inside of ${…}: a name, then nothing or one of :- - :? ? :+ + and the rest. */
function substituteBraced(inner: string, lookup: Lookup, depth: number): Substituted {
  const name = NAME.exec(inner)?.[0]
  if (!name) throw new Error(`"\${${inner}}" does not start with a variable name`)
  const rest = inner.slice(name.length)
  const value = lookup(name)
  if (rest === '') return {value: value ?? '', unset: value === undefined ? [name] : []}
  const colon = rest.startsWith(':')
  const op = rest[colon ? 1 : 0]
  const word = rest.slice(colon ? 2 : 1)
  // With the colon, an empty value counts as unset.
  const missing = value === undefined || (colon && value === '')
  switch (op) {
    case '-':
      return missing ? substitute(word, lookup, depth) : {value: value!, unset: []}
    case '?':
      if (missing) throw new Error(`required variable ${name} is ${value === undefined ? 'not set' : 'empty'}${word ? `: ${word}` : ''}`)
      return {value: value!, unset: []}
    case '+':
      return missing ? {value: '', unset: []} : substitute(word, lookup, depth)
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
export function interpolateDocument(doc: Document, report: Report, lookup: Lookup): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return
      const where = pathOf(ancestors, node)
      let result: Substituted
      try {
        result = substitute(node.value, lookup)
      } catch (error) {
        report.add('error', node, where, (error as Error).message)
        return
      }
      for (const name of new Set(result.unset)) report.add('warning', node, where, `variable ${name} is not set; using an empty string`, 'unset-variable')
      node.value = node.type === Scalar.PLAIN ? retyped(result.value) : result.value
      // What was written, for the checkers that keep a number as written (env: 1.10 stays 1.10).
      node.source = result.value
    },
  })
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

/** ['services', 'api', 'env', 'DB_URL'] for a value, from the visitor's ancestors. */
function pathOf(ancestors: readonly unknown[], node: unknown): Path {
  const out: Path = []
  const chain = [...ancestors, node]
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i]
    const child = chain[i + 1]
    if (isPair(parent) && isScalar(parent.key)) out.push(String(parent.key.value))
    else if (isSeq(parent)) out.push(parent.items.indexOf(child as never))
    else if (isMap(parent)) continue
  }
  return out
}
