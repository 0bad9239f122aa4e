// Manifests as kubectl reads them: each object checked against its published schema
// (kubernetes-models' validate(), the OpenAPI and CRD schemas compiled in), then written as
// multi-document YAML in a fixed order. A schema failure is the exporter's bug, never the
// user's: it stops the export before anything is written.
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {stringify} from 'yaml'
import {MeshError} from '../errors.js'
import type {Manifest} from './manifest.js'

/** Every manifest's object checked against its schema; throws on the first that fails. */
export function validateManifests(manifests: readonly Manifest[]): void {
  for (const {object} of manifests) {
    try {
      object.validate()
    } catch (error) {
      throw new MeshError('MESH_INTERNAL', `mesh export made a ${object.kind} "${object.metadata?.name}" that its schema refuses: ${(error as Error).message}`, {
        cause: error,
        hints: ['This is a bug in mesh export, not in mesh.yaml: please report it with the mesh.yaml.'],
      })
    }
  }
}

/**
 * One YAML document. YAML 1.1 quoting, as kubectl's parser reads 1.1: an env value `on` or
 * `yes` stays a string, not a boolean the API server refuses.
 */
function documentOf(m: Manifest): string {
  return stringify(m.object.toJSON(), {version: '1.1', lineWidth: 0})
}

/** All manifests as one multi-document stream, under a header naming where it came from. */
export function manifestsYaml(manifests: readonly Manifest[], header: string): string {
  return `${header.split('\n').map((line) => `# ${line}`.trimEnd()).join('\n')}\n${manifests.map((m) => `---\n${documentOf(m)}`).join('')}`
}

/** With --out DIR: one file per manifest file key (`00-namespace.yaml`, `<service>.yaml`, `ingress.yaml`); returns their paths. */
export async function writeManifestFiles(dir: string, manifests: readonly Manifest[], header: string): Promise<string[]> {
  const byFile = new Map<string, Manifest[]>()
  for (const m of manifests) byFile.set(m.file, [...(byFile.get(m.file) ?? []), m])
  const written: string[] = []
  try {
    await mkdir(dir, {recursive: true})
    for (const [file, group] of byFile) {
      const full = path.join(dir, `${file}.yaml`)
      await writeFile(full, manifestsYaml(group, header))
      written.push(full)
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    throw new MeshError('MESH_BAD_FLAG', `cannot write the manifests into ${dir}: ${code}${code === 'EEXIST' || code === 'ENOTDIR' ? ' (a file is in the way: --out takes a directory)' : ''}.`, {
      cause: error,
      hints: ['Give --out a directory (it is created if absent), or - for stdout.'],
    })
  }
  return written
}
