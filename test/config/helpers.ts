// Shared by the config tests: check a mesh.yaml text and read its issues the way a user does.
import {expect} from 'vitest'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {parseConfig} from '../../src/sim/config/load-config.js'

export const DIR = '/work/demo'
export const FILE = `${DIR}/mesh.yaml`

/** Lines joined with \n, so a test can count lines exactly. */
export function yaml(...lines: string[]): string {
  return lines.join('\n') + '\n'
}

/** Every issue as `mesh.yaml:L:C path: message`. */
export function problems(source: string, env: NodeJS.ProcessEnv = {}): string[] {
  return parseConfig(source, FILE, env).issues.map((i) => formatIssue(i, DIR))
}

/** `env`: the variables ${VAR} reads (none by default, whatever the environment of the test run). */
export function parsed(source: string, env: NodeJS.ProcessEnv = {}) {
  const result = parseConfig(source, FILE, env)
  expect(result.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(i, DIR))).toEqual([])
  return result.config!
}
