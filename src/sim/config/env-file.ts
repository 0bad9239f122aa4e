// `envFile:` — a service's (or version's) environment from dotenv files, as docker
// compose's `env_file`. The format is the one compose and dotenv read:
//
//   # a comment
//   export DATABASE_URL=postgres://localhost/dev   # `export ` is allowed, and ignored
//   GREETING="hello\nworld"                        # double quotes: \n \t \" \\ escapes
//   RAW='no $escapes here'                         # single quotes: literal
//   EMPTY=
//
// An unquoted value ends at ` #` (a comment) and is trimmed. Files are read when mesh.yaml
// is (mesh up, mesh validate, mesh apply), so an edited .env is a changed `env` to apply.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {type At, formatPath} from './checker.js'

export interface EnvFileIssue {
  line: number
  column: number
  message: string
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const ESCAPES: Record<string, string> = {n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\'}

/** The variables of one dotenv text, a later line winning, and what is wrong with the rest. */
export function parseEnvFile(text: string): {vars: Record<string, string>; issues: EnvFileIssue[]} {
  const vars: Record<string, string> = {}
  const issues: EnvFileIssue[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1
    const indent = raw.length - raw.trimStart().length
    let rest = raw.trim()
    if (rest === '' || rest.startsWith('#')) return
    if (rest.startsWith('export ')) rest = rest.slice(7).trimStart()
    const eq = rest.indexOf('=')
    const name = (eq < 0 ? rest : rest.slice(0, eq)).trim()
    if (eq < 0 || !NAME.test(name)) {
      const got = eq < 0 ? `"${rest}" (no =)` : `"${name}" before the =`
      issues.push({line, column: indent + 1, message: `expected NAME=VALUE with NAME of letters, digits and _, got ${got}`})
      return
    }
    const value = rest.slice(eq + 1).trimStart()
    const valueColumn = raw.length - value.length + 1
    const quote = value[0]
    if (quote === '"' || quote === "'") {
      const end = closingQuote(value, quote)
      if (end < 0) return void issues.push({line, column: valueColumn, message: `expected a closing ${quote} on the same line`})
      const after = value.slice(end + 1).trim()
      if (after !== '' && !after.startsWith('#')) {
        return void issues.push({line, column: valueColumn + end + 1, message: `expected nothing but a # comment after the closing ${quote}, got "${after}"`})
      }
      const inner = value.slice(1, end)
      vars[name] = quote === "'" ? inner : inner.replace(/\\(.)/g, (all, c: string) => ESCAPES[c] ?? all)
    } else {
      const comment = value.search(/\s#/)
      vars[name] = (comment < 0 ? value : value.slice(0, comment)).trim()
    }
  })
  return {vars, issues}
}

/** The index of the quote that closes `value` (which starts with one); -1 if none does. */
function closingQuote(value: string, quote: string): number {
  for (let i = 1; i < value.length; i++) {
    if (quote === '"' && value[i] === '\\') i++
    else if (value[i] === quote) return i
  }
  return -1
}

/**
 * The variables of a level's `envFile` (one file or a list, relative to mesh.yaml), merged in
 * order. A file that cannot be read is an error at its entry in mesh.yaml; a bad line, an
 * error at that line of the file itself.
 */
export function readEnvFiles(files: readonly string[] | undefined, at: At | undefined, dir: string): Record<string, string> {
  const vars: Record<string, string> = {}
  if (!files || !at) return vars
  files.forEach((file, i) => {
    const entry = at.item(i)
    const full = path.resolve(dir, file)
    let text: string
    try {
      text = readFileSync(full, 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      entry.error(code === 'ENOENT' ? `cannot read ${file}: there is no such file (paths are relative to mesh.yaml)` : `cannot read ${file}: ${code ?? (error as Error).message}`)
      return
    }
    const parsed = parseEnvFile(text)
    for (const issue of parsed.issues) at.report.issues.push({file: full, line: issue.line, column: issue.column, path: formatPath(entry.path), message: issue.message, severity: 'error'})
    Object.assign(vars, parsed.vars)
  })
  return vars
}
