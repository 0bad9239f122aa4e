// `mesh import istio`: Istio resources written into mesh.yaml's policy blocks, the rest of the
// file (comments included) as it was. The edited file is checked by the parser `mesh validate`
// runs before it replaces the old one; `dryRun` only says what would change.
//
//   FILE... ──readIstioFiles──▶ resources ──istioToPolicy──▶ edits ──setIn(mesh.yaml doc)──▶ parseConfig ──▶ written

import {readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {isMap, isSeq, LineCounter, parseDocument} from 'yaml'
import {MeshError} from '../errors.js'
import {formatPath} from '../config/checker.js'
import {formatIssue} from '../config/config-error.js'
import {loadConfig, parseConfig} from '../config/load-config.js'
import {readIstioFiles} from './istio-manifests.js'
import {istioToPolicy} from './istio-to-policy.js'
import {DEFAULT_TRUST_DOMAIN} from '../security/spiffe.js'
import type {Loss} from './loss.js'

export interface IstioImportResult {
  file: string
  /** Each value set, as it was and as it is (undefined: not there before). */
  changes: Array<{path: string; before?: unknown; after: unknown}>
  losses: Loss[]
  written: boolean
  yaml: string
}

export async function importIstio(request: {meshFile: string; files: readonly string[]; dryRun?: boolean; env?: NodeJS.ProcessEnv}): Promise<IstioImportResult> {
  const env = request.env ?? process.env
  const meshFile = path.resolve(request.meshFile)
  const config = await loadConfig(meshFile, env)
  const declared = new Map(config.services.map((s) => [s.name, s.versions.map((v) => v.name)]))
  const resources = await readIstioFiles(request.files)
  const {edits, losses} = istioToPolicy(resources, declared, {trustDomain: config.security?.trustDomain ?? DEFAULT_TRUST_DOMAIN, namespace: config.name})

  const source = await readFile(meshFile, 'utf8')
  const doc = parseDocument(source, {lineCounter: new LineCounter()})
  const changes: IstioImportResult['changes'] = []
  for (const edit of edits) {
    const before = doc.getIn(edit.path)
    // A value shared between rules is written twice, never as a YAML anchor and alias.
    doc.setIn(edit.path, flowSmall(doc.createNode(edit.value, {aliasDuplicateObjects: false})))
    changes.push({path: formatPath(edit.path), ...(before === undefined ? {} : {before: toJs(before)}), after: edit.value})
  }
  const yaml = doc.toString({lineWidth: 0, flowCollectionPadding: false})
  const checked = parseConfig(yaml, meshFile, env)
  if (!checked.config) {
    const errors = checked.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(i))
    throw new MeshError('MESH_IMPORT_FAILED', `${path.basename(meshFile)} with the imported policies does not pass mesh validate, so nothing was written:\n${errors.join('\n')}`, {
      hints: ['Look at the resource fields these lines came from; `--dry-run` shows each change without writing it.'],
    })
  }
  const written = !request.dryRun && changes.length > 0
  if (written) await writeFile(meshFile, yaml)
  return {file: meshFile, changes, losses, written, yaml}
}

/** Collections short enough for one line are written on one, as mesh.yaml's own examples are. */
function flowSmall(node: unknown): unknown {
  if (isMap(node) || isSeq(node)) {
    if (JSON.stringify(node.toJSON()).length <= 72) node.flow = true
    else for (const item of node.items) flowSmall(isMap(node) ? (item as {value: unknown}).value : item)
  }
  return node
}

function toJs(node: unknown): unknown {
  return typeof (node as {toJSON?: unknown})?.toJSON === 'function' ? (node as {toJSON(): unknown}).toJSON() : node
}
