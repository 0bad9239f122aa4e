// What the exporters make and the writer validates and prints: kubernetes-models objects,
// each tagged with the file it belongs in. Every value an exporter writes into one goes
// through the model's typed constructor, so a misspelt field is a compile error, and
// through its schema's validate() before anything is written (manifest-writer.ts).
import type {LossReport} from './loss-report.js'
import type {MeshConfig} from '../config/types.js'

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata?: {name?: string; namespace?: string}
  validate(): void
  toJSON(): unknown
}

export interface Manifest {
  /** The file it is written in with --out DIR (without .yaml): a service's name, `00-namespace` (applied first) or `ingress`. */
  file: string
  object: KubeObject
}

export type MeshTarget = 'none' | 'istio' | 'linkerd'

export interface ExportContext {
  config: MeshConfig
  namespace: string
  target: MeshTarget
  /** The image that runs simulated services (docker/simulated-service.Dockerfile). */
  runnerImage: string
  losses: LossReport
}

/** `payments` in namespace `shop` → `payments.shop.svc.cluster.local`: what callers and Istio's hosts name. */
export function serviceHost(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.cluster.local`
}

/** The labels every object of the mesh carries: `kubectl get all -l app.kubernetes.io/part-of=shop`. */
export function meshLabels(ctx: ExportContext): Record<string, string> {
  return {'app.kubernetes.io/part-of': ctx.config.name, 'app.kubernetes.io/managed-by': 'meshsim'}
}

/** `1500` → `1.5s`, `300` → `300ms`: the duration strings Istio takes (protobuf Duration, JSON form). */
export function istioDuration(ms: number): string {
  if (Number.isInteger(ms) && ms % 1000 !== 0) return `${ms}ms`
  return `${Number((ms / 1000).toFixed(3))}s`
}
