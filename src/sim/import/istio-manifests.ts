// Istio's traffic and security resources as `mesh import istio` reads them: every document of
// every file, with each node's line:column, so a loss or an error points where it was written.
//
//   FILE... ──parseAllDocuments──▶ {kind, name, spec At} per document ──▶ istio-to-policy.ts

import path from 'node:path'
import {LineCounter, parseAllDocuments} from 'yaml'
import {readSourceFile} from '../config/load-config.js'
import {type At, duplicateKeys, Report} from '../config/checker.js'
import type {ConfigIssue} from '../config/types.js'
import {SourceError} from './source-error.js'

/** The kinds import reads; any other is listed as not imported. */
export const ISTIO_KINDS = ['VirtualService', 'DestinationRule', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication'] as const

export interface IstioResource {
  kind: string
  name: string
  namespace?: string
  /** The document (for a loss about the whole resource) and its spec. */
  at: At
  spec?: At
}

/** Every resource of every file; throws MESH_CONFIG_NOT_FOUND, or the files' YAML errors at their lines. */
export async function readIstioFiles(files: readonly string[]): Promise<IstioResource[]> {
  const out: IstioResource[] = []
  const issues: ConfigIssue[] = []
  for (const file of files) {
    const absolute = path.resolve(file)
    const source = await readSourceFile(absolute, {message: `no file at ${absolute}`, hints: ['Name the files holding the Istio resources: `mesh import istio istio/*.yaml`.']})
    const read = parseIstio(source, absolute)
    issues.push(...read.issues)
    out.push(...read.resources)
  }
  if (issues.some((i) => i.severity === 'error')) throw new SourceError(issues, 'Fix these in the manifests (`kubectl apply --dry-run=client -f FILE` reads them the same way), then import them again.')
  return out
}

/** The resources of one file's text (`file` absolute), and what is wrong with it. */
export function parseIstio(source: string, file: string): {resources: IstioResource[]; issues: ConfigIssue[]} {
  const lineCounter = new LineCounter()
  const resources: IstioResource[] = []
  const issues: ConfigIssue[] = []
  for (const doc of parseAllDocuments(source, {lineCounter, prettyErrors: false, uniqueKeys: false}) as ReturnType<typeof parseAllDocuments> & unknown[]) {
    const report = new Report(file, doc, lineCounter)
    for (const e of doc.errors) report.issues.push({file, ...report.positionOfOffset(e.pos[0]), path: '', message: e.message.split('\n')[0], severity: 'error'})
    for (const key of duplicateKeys(doc)) report.add('error', key, '', 'map keys must be unique')
    const root = report.root()
    if (report.errorCount === 0 && root.kind !== 'nothing') {
      const kind = root.child('kind')?.value
      const name = root.child('metadata')?.child('name')?.value
      if (root.kind !== 'map' || typeof kind !== 'string') root.expected('a Kubernetes resource: a mapping with kind, metadata and spec')
      else {
        const namespace = root.child('metadata')?.child('namespace')?.value
        resources.push({kind, name: typeof name === 'string' ? name : '(unnamed)', ...(typeof namespace === 'string' ? {namespace} : {}), at: root, spec: root.child('spec')})
      }
    }
    issues.push(...report.issues)
  }
  return {resources, issues}
}
