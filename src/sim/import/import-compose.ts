// `mesh import compose`: read a compose file, write the mesh.yaml it maps to — checked by the
// same parseConfig `mesh validate` runs before anything is written, so what import writes is a
// mesh the mesh accepts; a file already there is kept unless the caller forces it.
//
//   compose.yaml ──readComposeFile──▶ ComposeProject ──composeToMesh──▶ yaml + losses ──parseConfig──▶ written

import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {MeshError} from '../errors.js'
import {formatIssue} from '../config/config-error.js'
import {parseConfig} from '../config/load-config.js'
import type {ConfigIssue} from '../config/types.js'
import {readComposeFile} from './compose-file.js'
import {composeToMesh, type ImportedService} from './compose-to-mesh.js'
import type {Loss} from './loss.js'

export interface ComposeImportRequest {
  composeFile: string
  /** Where to write mesh.yaml; '-' writes nothing (the caller prints `yaml`). */
  out: string
  force?: boolean
  simulateImages?: boolean
  env?: NodeJS.ProcessEnv
}

export interface ComposeImportResult {
  from: string
  /** The file written (absolute), or '-'. */
  written: string
  services: ImportedService[]
  losses: Loss[]
  /** Warnings reading the compose file (an unset variable) and `mesh validate`'s warnings on the result. */
  warnings: ConfigIssue[]
  yaml: string
}

export async function importCompose(request: ComposeImportRequest): Promise<ComposeImportResult> {
  const env = request.env ?? process.env
  const toStdout = request.out === '-'
  // Paths in mesh.yaml are relative to its directory; printed, it is read from here.
  const outFile = path.resolve(toStdout ? 'mesh.yaml' : request.out)
  // The input first: a missing or broken compose file is the error to see, not the output's.
  const project = await readComposeFile(request.composeFile, env)
  if (!toStdout && !request.force && existsSync(outFile)) {
    throw new MeshError('MESH_FILE_EXISTS', `${request.out} already exists; nothing was written. Use --force to overwrite it.`, {
      hints: ['Write elsewhere with --out FILE, print it with --out -, or overwrite with --force.'],
    })
  }
  const imported = composeToMesh(project, {outFile, simulateImages: request.simulateImages})
  const checked = parseConfig(imported.yaml, outFile, env)
  if (!checked.config) {
    // Import only writes what mesh.yaml can say: an error here is import's own.
    const errors = checked.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(i))
    throw new MeshError('MESH_IMPORT_FAILED', `the mesh.yaml imported from ${request.composeFile} does not pass mesh validate, so nothing was written:\n${errors.join('\n')}`, {
      hints: ['This is a bug in mesh import compose: please report it with the compose file. `--out -` prints what it would write.'],
    })
  }
  if (!toStdout) {
    await mkdir(path.dirname(outFile), {recursive: true})
    await writeFile(outFile, imported.yaml)
  }
  return {
    from: project.file,
    written: toStdout ? '-' : outFile,
    services: imported.services,
    losses: imported.losses,
    warnings: [...project.warnings, ...checked.issues],
    yaml: imported.yaml,
  }
}
