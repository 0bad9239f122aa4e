// A mesh.yaml's issues as the CLI shows them: `file:line:column path: message`. Apart from
// load-config.ts (and the YAML parser behind it), so a command that only reports one need
// not load them.
import {basename, relative} from 'node:path'
import {MeshError} from '../errors.js'
import type {ConfigIssue} from './types.js'

/** The hint every command but `mesh validate` itself gives with a ConfigError. */
export const VALIDATE_HINT = '`mesh validate` checks it without starting anything.'

/** mesh.yaml has errors; `issues` holds every one (and any warnings), the message one line each. */
export class ConfigError extends MeshError {
  readonly issues: ConfigIssue[]

  constructor(issues: ConfigIssue[], cwd?: string) {
    const errors = issues.filter((i) => i.severity === 'error')
    super('MESH_CONFIG_INVALID', errors.map((i) => formatIssue(i, cwd)).join('\n'), {
      // The errors may be in an envFile too: name each file once.
      hints: [`Fix these in ${[...new Set(errors.map((i) => basename(i.file)))].join(' and ') || 'mesh.yaml'}.`, VALIDATE_HINT],
    })
    this.name = 'ConfigError'
    this.issues = issues
  }
}

/** 'mesh.yaml:14:7 services.catalog.replicas: expected a positive integer, got "three"' (file relative to cwd). */
export function formatIssue(issue: ConfigIssue, cwd: string = process.cwd()): string {
  const file = relative(cwd, issue.file) || basename(issue.file)
  const where = issue.path ? `${issue.path}: ` : ''
  const severity = issue.severity === 'warning' ? 'warning: ' : ''
  return `${file}:${issue.line}:${issue.column} ${where}${severity}${issue.message}`
}
