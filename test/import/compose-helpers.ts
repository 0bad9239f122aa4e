// Importing a compose text in a fresh directory, without the CLI: the mapping's result, its
// mesh.yaml read back, and proof that `mesh validate`'s parse accepts it.
import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'vitest'
import {parse} from 'yaml'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {ConfigIssue} from '../../src/sim/config/types.js'
import {parseCompose} from '../../src/sim/import/compose-file.js'
import {composeToMesh, type ComposeImport} from '../../src/sim/import/compose-to-mesh.js'

export function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'meshsim-import-'))
}

/** A mesh.yaml service as read back, loosely typed: tests look at whichever fields they map. */
export type MeshService = Record<string, any>

export interface Imported extends ComposeImport {
  dir: string
  mesh: {name: string; ingress?: {port: number; routes: Array<Record<string, string>>}; services: Record<string, MeshService>}
  /** The losses as `line:column path kind` and reason, for readable assertions. */
  lossLines: string[]
}

/** Imports `compose` (written as compose.yaml in a fresh directory, with `files` beside it); the result must validate. */
export function importText(compose: string, options: {simulateImages?: boolean; files?: Record<string, string>; env?: NodeJS.ProcessEnv} = {}): Imported {
  const dir = tempDir()
  const file = path.join(dir, 'compose.yaml')
  writeFileSync(file, compose)
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(path.join(dir, name), text)
  const project = parseCompose(compose, file, options.env ?? {})
  if ('issues' in project) throw new Error(`compose not read:\n${project.issues.map((i) => formatIssue(i, dir)).join('\n')}`)
  const result = composeToMesh(project, {outFile: path.join(dir, 'mesh.yaml'), simulateImages: options.simulateImages})
  const checked = parseConfig(result.yaml, path.join(dir, 'mesh.yaml'), {})
  expect(checked.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(i, dir)), result.yaml).toEqual([])
  return {...result, dir, mesh: parse(result.yaml), lossLines: result.losses.map((l) => `${l.line}:${l.column} ${l.path} ${l.kind}: ${l.reason}`)}
}

/** The issues a compose text gets, as the CLI prints them (file relative to its directory). */
export function composeIssues(compose: string, env: NodeJS.ProcessEnv = {}): string[] {
  const dir = tempDir()
  const file = path.join(dir, 'compose.yaml')
  writeFileSync(file, compose)
  const read = parseCompose(compose, file, env)
  expect('issues' in read, 'expected the compose file to be refused').toBe(true)
  return (read as {issues: ConfigIssue[]}).issues.map((i) => formatIssue(i, dir))
}
