// Every template (and `mesh init --template large`'s output) exports to manifests whose every
// object passes its published schema, for each target; the same input gives the same bytes;
// and the shop's manifests and loss report are the golden files (UPDATE_GOLDEN=1 rewrites them).
import {mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseAllDocuments} from 'yaml'
import {describe, expect, test} from 'vitest'
import {loadConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'
import {exportKubernetes, MESH_TARGETS} from '../../src/sim/export/export-kubernetes.js'
import {manifestsYaml, validateManifests} from '../../src/sim/export/manifest-writer.js'
import {writeTemplate} from '../../src/sim/templates/templates.js'
import {ROOT} from '../helpers/mesh.js'

const RUNNER = 'meshsim-simulated-service:test'
const GOLDEN = path.join(ROOT, 'test/export/golden')

const templateDirs = readdirSync(path.join(ROOT, 'templates')).map((name) => ({name, dir: path.join(ROOT, 'templates', name)}))

async function large(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-export-large-'))
  await writeTemplate('large', dir, {generator: {services: 60, seed: 3}})
  return dir
}

function yamlOf(config: MeshConfig, target: (typeof MESH_TARGETS)[number]): string {
  const result = exportKubernetes(config, {target, runnerImage: RUNNER})
  validateManifests(result.manifests)
  return manifestsYaml(result.manifests, 'test')
}

describe.each([...templateDirs, {name: 'large', dir: ''}])('the $name template', ({name, dir}) => {
  test.each([...MESH_TARGETS])('exports with --mesh %s: every object valid, kubectl-ready, the same bytes twice', async (target) => {
    const config = await loadConfig(path.join(dir || (await large()), 'mesh.yaml'))
    const first = yamlOf(config, target)
    // A second export from a second read of the file: nothing in the output depends on the run.
    expect(yamlOf(await loadConfig(config.file), target)).toBe(first)
    const docs = parseAllDocuments(first)
    const seen = new Set<string>()
    for (const doc of docs as Array<ReturnType<typeof parseAllDocuments>[number]>) {
      expect(doc.errors).toEqual([])
      const o = doc.toJS() as {apiVersion?: string; kind?: string; metadata?: {name?: string; namespace?: string}}
      // What kubectl apply needs of every object: its type, its name, and where it goes.
      expect(o.apiVersion, JSON.stringify(o)).toBeTruthy()
      expect(o.kind).toBeTruthy()
      expect(o.metadata?.name).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/)
      // The ingress gateway's RequestAuthentication goes where the gateway's pods are.
      if (o.kind !== 'Namespace') expect(o.metadata?.namespace).toBe(o.kind === 'RequestAuthentication' && o.metadata?.name?.endsWith('-ingress') ? 'istio-system' : config.name)
      const key = `${o.apiVersion}/${o.kind}/${o.metadata?.name}`
      expect(seen.has(key), `${key} twice`).toBe(false)
      seen.add(key)
    }
    const kinds = new Set([...seen].map((k) => k.split('/').at(-2)))
    const workloads = config.services.reduce((n, s) => n + s.versions.length, 0)
    // A Deployment or Job per version, or a Knative Service for a one-version scaling: service.
    expect([...seen].filter((k) => /\/(Deployment|Job)\//.test(k) || k.startsWith('serving.knative.dev/v1/Service/'))).toHaveLength(workloads)
    expect(kinds.has('VirtualService')).toBe(target === 'istio')
    expect(kinds.has('DestinationRule')).toBe(target === 'istio')
    // Linkerd's policy kinds, checked by linkerd-policy-schema.ts, wherever a service admits callers by rule.
    expect(kinds.has('Server')).toBe(target === 'linkerd' && config.services.some((s) => (s.policy.authorization?.allow?.length ?? 0) > 0))
    expect(name === 'large' || kinds.has(target === 'istio' ? 'Gateway' : 'Ingress')).toBe(true)
  }, 60_000)
})

describe('the shop template: golden files', () => {
  test.each([...MESH_TARGETS])('--mesh %s', async (target) => {
    const config = await loadConfig(path.join(ROOT, 'templates/shop/mesh.yaml'))
    const result = exportKubernetes(config, {target, runnerImage: RUNNER})
    validateManifests(result.manifests)
    const yaml = manifestsYaml(result.manifests, `mesh export kubernetes --mesh ${target} of templates/shop`)
    const losses = `${JSON.stringify(result.losses, null, 2)}\n`
    const files = {yaml: path.join(GOLDEN, `shop-${target}.yaml`), losses: path.join(GOLDEN, `shop-${target}-losses.json`)}
    if (process.env.UPDATE_GOLDEN) {
      writeFileSync(files.yaml, yaml)
      writeFileSync(files.losses, losses)
    }
    expect(yaml).toBe(readFileSync(files.yaml, 'utf8'))
    expect(losses).toBe(readFileSync(files.losses, 'utf8'))
  })
})
