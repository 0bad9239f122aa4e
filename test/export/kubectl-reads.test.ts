// kubectl reads the manifests as the exporter meant them: its own YAML decoder (YAML 1.1,
// where an unquoted `on` is a boolean) gives back every object exactly. Offline: `kubectl
// annotate --local` decodes each object and prints it without a cluster. Skipped where no
// kubectl is installed.
import {execa} from 'execa'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {loadConfig} from '../../src/sim/config/load-config.js'
import {exportKubernetes, MESH_TARGETS} from '../../src/sim/export/export-kubernetes.js'
import {manifestsYaml} from '../../src/sim/export/manifest-writer.js'
import {ROOT} from '../helpers/mesh.js'

const kubectl = await execa('kubectl', ['version', '--client'], {reject: false}).then((r) => r.exitCode === 0, () => false)
const MARK = 'meshsim.dev/kubectl-reads'

/** kubectl's -o json of several objects: one JSON document after another. */
function jsonStream(text: string): unknown[] {
  return text
    .trim()
    .split(/(?<=^\})\n(?=\{$)/m)
    .map((doc) => JSON.parse(doc) as {metadata: {annotations?: Record<string, string>}})
    .map((o) => {
      const {[MARK]: _mark, ...annotations} = o.metadata.annotations ?? {}
      o.metadata.annotations = annotations
      if (Object.keys(annotations).length === 0) delete o.metadata.annotations
      return o
    })
}

describe.skipIf(!kubectl)('kubectl decodes every object as written', () => {
  // The shop's recommendations has a deploy: block: its Rollout and Canary objects too.
  const cases = [...['shop', 'secure-shop', 'serverless'].flatMap((t) => MESH_TARGETS.map((m) => [t, m, 'none'] as const)), ...(['argo', 'flagger'] as const).flatMap((r) => MESH_TARGETS.map((m) => ['shop', m, r] as const))]
  test.each(cases)('%s, --mesh %s --rollouts %s', async (template, target, rollouts) => {
    const config = await loadConfig(path.join(ROOT, 'templates', template, 'mesh.yaml'))
    // An env value kubectl would read as a boolean if written bare.
    config.services[0].versions[0].env = {...config.services[0].versions[0].env, FEATURE: 'on', RATIO: '1e3'}
    const {manifests} = exportKubernetes(config, {target, rollouts, runnerImage: 'runner:test'})
    const run = await execa('kubectl', ['annotate', '--local', '-f', '-', `${MARK}=1`, '-o', 'json'], {input: manifestsYaml(manifests, 'test'), reject: false, env: {KUBECONFIG: '/dev/null'}})
    expect(run.exitCode, run.stderr).toBe(0)
    expect(jsonStream(run.stdout)).toEqual(manifests.map((m) => JSON.parse(JSON.stringify(m.object.toJSON()))))
  }, 30_000)
})
