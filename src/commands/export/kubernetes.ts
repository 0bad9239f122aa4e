import path from 'node:path'
import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../../cli/mesh-command.js'
import {loadConfigWithWarnings} from '../../sim/config/load-config.js'
import {MeshError} from '../../sim/errors.js'
import {defaultRunnerImage, exportKubernetes, MESH_TARGETS} from '../../sim/export/export-kubernetes.js'
import {formatLosses, type Loss} from '../../sim/export/loss-report.js'
import {ROLLOUT_TARGETS, type RolloutTarget} from '../../sim/export/rollouts.js'
import {manifestsYaml, validateManifests, writeManifestFiles} from '../../sim/export/manifest-writer.js'

interface ExportOutput {
  target: string
  namespace: string
  objects: Array<{kind: string; name: string; file: string}>
  losses: Loss[]
  /** With --out DIR: the files written. */
  files?: string[]
  /** With --out - (the default): the manifests themselves. */
  manifests?: string
}

const TARGET_NAMES = {none: 'Kubernetes', istio: 'Kubernetes with Istio', linkerd: 'Kubernetes with Linkerd'} as const
const ROLLOUT_NAMES = {none: '', argo: ' and Argo Rollouts', flagger: ' and Flagger'} as const

export default class ExportKubernetes extends MeshCommand {
  static override description = `Write Kubernetes manifests for the whole mesh.yaml: per service a Service and, per version, a Deployment (a Job for restart: "no" or on-failure; a Knative Service for a one-version scaling: service); with --mesh istio, each service's policies as a VirtualService and a DestinationRule, its security as Istio's, and the ingress as a Gateway; with --mesh linkerd, Gateway API HTTPRoutes with Linkerd's retry and timeout annotations. Every object is checked against its published schema before it is written.

Nothing is dropped in silence: each setting with no exact equivalent in the target (a retry budget, peak-EWMA, a sliding-log rate limit, a fault at the callee...) is listed on stderr (and in --json) with why and what was written instead; --strict makes any of them an error (exit 2).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> export kubernetes --mesh istio > shop.yaml',
    '<%= config.bin %> export kubernetes --mesh istio --namespace shop-dev --out k8s/ && kubectl apply -f k8s/',
    '<%= config.bin %> export kubernetes --mesh istio --strict --json',
  ]
  static override flags = {
    mesh: Flags.string({options: [...MESH_TARGETS], default: 'none', description: 'the service mesh that carries the policies: istio, linkerd, or none (workloads only)'}),
    namespace: Flags.string({description: "the namespace of every object (default: the mesh's name)"}),
    out: Flags.string({default: '-', description: 'a directory to write one file per service into (00-namespace.yaml, <service>.yaml, ingress.yaml), or - for stdout'}),
    strict: Flags.boolean({default: false, description: 'fail (exit 2, nothing written) when any setting has no exact equivalent in the target'}),
    rollouts: Flags.string({options: [...ROLLOUT_TARGETS], default: 'none', description: "what carries each service's deploy: block: argo (a Rollout and an AnalysisTemplate), flagger (a Canary), or none (reported)"}),
    'runner-image': Flags.string({description: 'the image simulated services run in (built from docker/simulated-service.Dockerfile; default meshsim-simulated-service:<version>)'}),
  }

  async run(): Promise<ExportOutput> {
    const {flags} = await this.parse(ExportKubernetes)
    if (flags.namespace !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(flags.namespace)) {
      throw new MeshError('MESH_BAD_FLAG', `--namespace "${flags.namespace}" is not a Kubernetes namespace name.`, {hints: ['A namespace is a DNS label: lowercase letters, digits and dashes, at most 63, e.g. shop-dev']})
    }
    const {config, warnings} = await loadConfigWithWarnings(path.resolve(flags.file))
    this.warnUnsetVariables(warnings)
    const target = flags.mesh as (typeof MESH_TARGETS)[number]
    const rollouts = flags.rollouts as RolloutTarget
    const result = exportKubernetes(config, {target, rollouts, namespace: flags.namespace, runnerImage: flags['runner-image'] ?? defaultRunnerImage(this.config.version)})
    validateManifests(result.manifests)
    const targetName = `${TARGET_NAMES[target]}${ROLLOUT_NAMES[rollouts]}`
    const report = formatLosses(result.losses, targetName)
    // On stderr with --json too: stdout is the JSON, and the report is for whoever runs it.
    if (report) process.stderr.write(`${chalk.yellow(report)}\n`)
    if (flags.strict && result.losses.length > 0) {
      throw new MeshError('MESH_EXPORT_LOSSY', `--strict: ${result.losses.length} setting${result.losses.length === 1 ? '' : 's'} of ${path.basename(config.file)} cannot be exported exactly to ${targetName}; nothing was written.`, {
        hints: ['Each is listed above with the nearest equivalent; change mesh.yaml, or export without --strict and fix the manifests by hand.'],
      })
    }
    const header = `Generated by \`mesh export kubernetes --mesh ${target}${rollouts === 'none' ? '' : ` --rollouts ${rollouts}`}\` from ${path.basename(config.file)} (mesh "${config.name}"), namespace ${result.namespace}.\nApply with kubectl apply -f. Settings with no exact equivalent are listed on stderr.`
    const objects = result.manifests.map((m) => ({kind: m.object.kind, name: m.object.metadata?.name ?? '', file: m.file}))
    const output: ExportOutput = {target, namespace: result.namespace, objects, losses: result.losses}
    if (flags.out === '-') {
      const yaml = manifestsYaml(result.manifests, header)
      if (this.jsonEnabled()) output.manifests = yaml
      else process.stdout.write(yaml)
    } else {
      output.files = await writeManifestFiles(path.resolve(flags.out), result.manifests, header)
      this.logToStderr(`${chalk.green('✔')} ${objects.length} objects in ${output.files.length} files under ${flags.out}`)
    }
    return output
  }
}

