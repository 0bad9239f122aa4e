// Reading mesh.yaml: YAML syntax, then the schema, then the checks across the file.
// Every problem is collected with its line:column before anything is rejected.
//
//   source ──parseDocument──▶ AST ──${VAR}──▶ AST ──checkMesh──▶ services ──crossCheck──▶ MeshConfig | issues

import {lintResilience} from './resilience-lint.js'
import {readFile} from 'node:fs/promises'
import {dirname, resolve} from 'node:path'
import {type Document, LineCounter, parseDocument} from 'yaml'
import {MeshError} from '../errors.js'
import {duplicateKeys, Report} from './checker.js'
import {crossCheck} from './cross-checks.js'
import {interpolateDocument, type LeftForInstances, type Lookup, variablesFor} from './interpolate.js'
import {checkMesh} from './mesh-schema.js'
import type {ConfigIssue, MeshConfig} from './types.js'
import {ConfigError} from './config-error.js'
import {parseSubset} from './yaml-subset.js'

/**
 * Check a mesh.yaml's text. `config` only when no issue is an error; `file` should be absolute.
 * `env` (with a .env beside the file) fills ${VAR} in values (interpolate.ts).
 * `subset: false` reads with the yaml library alone (the test that holds the two readers to one result).
 * `edit` changes the document once read and substituted, before any check (`mesh sim --vary`
 * sets a key that way, so its value meets the same checks, at the same line, as if written).
 */
export function parseConfig(
  source: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  {subset = true, edit}: {subset?: boolean; edit?: (doc: Document) => void} = {},
): {config?: MeshConfig; issues: ConfigIssue[]; resolved?: string; leftForInstances?: LeftForInstances} {
  const absolute = resolve(file)
  const lineCounter = new LineCounter()
  // The subset reader gives the yaml library's AST several times faster; whatever it does
  // not read (anchors, tags, syntax errors…) the library parses.
  const fast = subset ? parseSubset(source, lineCounter, YAML_OPTIONS) : undefined
  const doc = fast?.doc ?? parseDocument(source, {lineCounter, ...YAML_OPTIONS})
  const report = new Report(absolute, doc, lineCounter)

  for (const e of doc.errors) report.issues.push(yamlIssue(report, e, 'error'))
  for (const w of doc.warnings) report.issues.push(yamlIssue(report, w, 'warning'))
  for (const key of fast?.duplicateKeys ?? duplicateKeys(doc)) report.add('error', key, '', 'map keys must be unique')
  // A broken document parses into a guess; checking the guess would only add noise.
  if (report.errorCount > 0) return {issues: sorted(report.issues)}

  const lookup = variablesFor(dirname(absolute), env)
  const leftForInstances = interpolateDocument(doc, report, lookup, fast?.substitutable)
  edit?.(doc)
  const checked = checkMesh(report, absolute, dirname(absolute))
  crossCheck(checked, report)
  // Resilience lint: advice about the policies' numbers, only once the file is valid.
  if (report.errorCount === 0) {
    for (const w of lintResilience(checked.config)) {
      report.add('warning', report.locate(w.path.split('.')).positionNode, w.path, w.message)
    }
  }
  const issues = sorted(report.issues)
  if (report.errorCount > 0) return {issues}
  // The file as the mesh read it, variables substituted, comments kept (`mesh config`);
  // written out only when asked for, as it costs as much as the parse.
  return {
    config: checked.config,
    issues,
    leftForInstances,
    get resolved() {
      return (fast ? withComments(source, absolute, lookup) : doc).toString({lineWidth: 0})
    },
  }
}

// uniqueKeys: yaml compares each key with every earlier key of its map, quadratic in a
// map's size (100 s for 16,000 services); duplicateKeys does the same check in one pass.
const YAML_OPTIONS = {prettyErrors: false, uniqueKeys: false}

/** The library's document, substituted, for `mesh config`: the subset reader keeps no comments. */
function withComments(source: string, file: string, lookup: Lookup): Document {
  const lineCounter = new LineCounter()
  const doc = parseDocument(source, {lineCounter, ...YAML_OPTIONS})
  interpolateDocument(doc, new Report(file, doc, lineCounter), lookup)
  return doc
}

/** Read and check mesh.yaml; throws MESH_CONFIG_NOT_FOUND or ConfigError (MESH_CONFIG_INVALID). */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<MeshConfig> {
  return (await loadConfigWithWarnings(file, env)).config
}

/** As loadConfig, also returning the warnings (which never block), for `mesh validate`. */
export async function loadConfigWithWarnings(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{config: MeshConfig; warnings: ConfigIssue[]; resolved: string; leftForInstances: LeftForInstances}> {
  const absolute = resolve(file)
  const source = await readSourceFile(absolute, {message: `no mesh file at ${absolute}`, hints: ['Run `mesh init` to write a starter mesh.yaml, or point at yours with --file.']})
  const parsed = parseConfig(source, absolute, env)
  if (!parsed.config) throw new ConfigError(parsed.issues)
  return {
    config: parsed.config,
    warnings: parsed.issues.filter((i) => i.severity === 'warning'),
    leftForInstances: parsed.leftForInstances!,
    get resolved() {
      return parsed.resolved!
    },
  }
}

/** A file's text (`absolute`): one that is not there is MESH_CONFIG_NOT_FOUND, saying `notFound`; any other failure MESH_CONFIG_UNREADABLE. */
export async function readSourceFile(absolute: string, notFound: {message: string; hints: string[]}): Promise<string> {
  try {
    return await readFile(absolute, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MeshError('MESH_CONFIG_NOT_FOUND', notFound.message, {cause: error, hints: notFound.hints})
    throw new MeshError('MESH_CONFIG_UNREADABLE', `cannot read ${absolute}: ${(error as Error).message}`, {cause: error})
  }
}

interface YamlProblem {
  message: string
  pos: [number, number]
}

function yamlIssue(report: Report, e: YamlProblem, severity: ConfigIssue['severity']): ConfigIssue {
  // yaml's messages sometimes carry their own position; ours is in line:column already.
  const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
  return {file: report.file, ...report.positionOfOffset(e.pos[0]), path: '', message: lowerFirst(message), severity}
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0].toLowerCase() + s.slice(1) : s
}

function sorted(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({issue, i}))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.i - b.i)
    .map(({issue}) => issue)
}
