// The workloads of a mesh.yaml as Kubernetes objects: per service a Service, per version a
// Deployment (or a Job, for `restart: "no"` / `on-failure`), with the environment the mesh
// gives each instance rewritten for the cluster: a dependency's `<DEP>_URL` is its Service's
// DNS name rather than a loopback sidecar listener (in a cluster the sidecar, if any, is
// transparent). Kubernetes' own settings that mesh.yaml cannot say are left at their defaults.
import path from 'node:path'
import {Deployment} from 'kubernetes-models/apps/v1/Deployment'
import {Job} from 'kubernetes-models/batch/v1/Job'
import {Namespace} from 'kubernetes-models/v1/Namespace'
import {Service} from 'kubernetes-models/v1/Service'
import {ServiceAccount} from 'kubernetes-models/v1/ServiceAccount'
import type {IContainer} from 'kubernetes-models/v1/Container'
import type {IEnvVar} from 'kubernetes-models/v1/EnvVar'
import type {IPodSpec} from 'kubernetes-models/v1/PodSpec'
import type {IProbe} from 'kubernetes-models/v1/Probe'
import {dependencyAddressEnv, dependencyEnvName, EnvNames} from '../config/env-names.js'
import type {ServiceConfig, VersionConfig} from '../config/types.js'
import {type ExportContext, type Manifest, meshLabels, serviceHost} from './manifest.js'

/** What a version's process listens on when mesh.yaml fixes no port (the mesh would pick one). */
export const DEFAULT_CONTAINER_PORT = 8080
/** The port an HTTP or gRPC Service takes: `http://cart/` through a proxy (the shop's frontend) reaches it as typed. */
export const HTTP_SERVICE_PORT = 80

type Protocol = 'http' | 'grpc' | 'tcp'
const protocolOf = (s: ServiceConfig): Protocol => s.protocol ?? 'http'

/** The port a version's container listens on: its fixed `port:`, an address's own port, or 8080. */
function containerPort(v: VersionConfig): number {
  if (v.workload.kind === 'address') return v.workload.port
  return v.port ?? DEFAULT_CONTAINER_PORT
}

/** Whether pods of ours run it: all but an address: without an image. */
function runsPods(s: ServiceConfig): boolean {
  return externalAddress(s) === undefined
}

/** An address: service the cluster can reach only by name (no image to run it): an ExternalName Service. */
function externalAddress(s: ServiceConfig): {host: string; port: number} | undefined {
  const w = s.versions[0].workload
  return w.kind === 'address' && w.image === undefined ? {host: w.host, port: w.port} : undefined
}

/** The port callers dial: 80 for HTTP and gRPC, the container's own for TCP (and for an external address). */
export function servicePort(s: ServiceConfig): number {
  const external = externalAddress(s)
  if (external) return external.port
  return protocolOf(s) === 'tcp' ? containerPort(s.versions[0]) : HTTP_SERVICE_PORT
}

/** Envoy and Istio read a port's protocol from its name (`http`, `grpc`, `tcp`, or with a `-suffix`). */
const portName = (s: ServiceConfig): Protocol => protocolOf(s)

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0)$/
const IP = /^(\d+\.\d+\.\d+\.\d+|[0-9a-fA-F:]*:[0-9a-fA-F:]*)$/

export function namespaceObject(ctx: ExportContext): Manifest {
  const labels: Record<string, string> = {...meshLabels(ctx)}
  // Istio injects a sidecar into each pod of a namespace labelled so; Linkerd of one annotated so.
  if (ctx.target === 'istio') labels['istio-injection'] = 'enabled'
  const annotations = ctx.target === 'linkerd' ? {annotations: {'linkerd.io/inject': 'enabled'}} : {}
  return {file: '00-namespace', object: new Namespace({metadata: {name: ctx.namespace, labels, ...annotations}})}
}

/** `elsewhere`: services another exporter writes (knative.ts's Knative Services). */
export function workloadObjects(ctx: ExportContext, elsewhere: (s: ServiceConfig) => boolean): Manifest[] {
  const out: Manifest[] = []
  for (const s of ctx.config.services) {
    // Each service its own identity, as in meshsim (spiffe.ts): Istio's principal names the pod's service account.
    if (runsPods(s)) out.push({file: s.name, object: new ServiceAccount({metadata: {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}})})
    if (elsewhere(s)) continue
    const service = serviceObject(s, ctx)
    if (service) out.push({file: s.name, object: service})
    for (const v of s.versions) {
      const workload = versionObject(s, v, ctx)
      if (workload) out.push({file: s.name, object: workload})
    }
  }
  return out
}

function serviceObject(s: ServiceConfig, ctx: ExportContext): Service | undefined {
  const metadata = {name: s.name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}}
  const external = externalAddress(s)
  if (external) {
    if (LOOPBACK.test(external.host) || IP.test(external.host)) {
      ctx.losses.add(
        `services.${s.name}.address`,
        `${external.host}:${external.port} is an address outside the cluster that no cluster DNS name can stand for (a loopback or an IP)`,
        `no object; give the service an image: to run it in the cluster, or write an ExternalName Service (or a selector-less Service with an EndpointSlice) for where it runs`,
      )
      return undefined
    }
    return new Service({metadata, spec: {type: 'ExternalName', externalName: external.host, ports: [{name: portName(s), port: external.port, appProtocol: protocolOf(s)}]}})
  }
  return new Service({
    metadata,
    spec: {
      selector: {app: s.name},
      // The target is the container port's name, so versions listening on different ports share one Service.
      ports: [{name: portName(s), port: servicePort(s), targetPort: portName(s), appProtocol: protocolOf(s)}],
    },
  })
}

function versionObject(s: ServiceConfig, v: VersionConfig, ctx: ExportContext): Deployment | Job | undefined {
  const w = v.workload
  if (w.kind === 'address' && w.image === undefined) return undefined
  const where = s.versions.length > 1 || v.name !== 'v1' ? `services.${s.name}.versions.${v.name}` : `services.${s.name}`
  const labels = {app: s.name, version: v.name}
  const metadata = {name: `${s.name}-${v.name}`, namespace: ctx.namespace, labels: {...labels, ...meshLabels(ctx)}}
  const job = s.restart !== undefined
  // A Job's pod ends when its container does only if the mesh's proxy runs as a native sidecar (Kubernetes 1.28+).
  const nativeSidecar: Record<string, Record<string, string>> = {istio: {'sidecar.istio.io/nativeSidecar': 'true'}, linkerd: {'config.beta.linkerd.io/proxy-enable-native-sidecar': 'true'}}
  const annotations = job ? nativeSidecar[ctx.target] : undefined
  const pod: IPodSpec = {
    serviceAccountName: s.name,
    containers: [container(s, v, ctx, where, job ? 'job' : 'deployment')],
    terminationGracePeriodSeconds: wholeSeconds(s.stopGracePeriodMs, `services.${s.name}.stopGracePeriod`, ctx, 0),
  }
  if (v.scaling) {
    ctx.losses.add(
      `${where}.scaling`,
      'autoscaling on concurrency or requests per second (Knative\'s KPA) has no Deployment equivalent, and a Knative Service stands for one version (revisions are made one after the other), not several or a job',
      `a Deployment at the initial scale (${v.replicas} replicas); a HorizontalPodAutoscaler or a Knative Service with autoscaling.knative.dev annotations scales it`,
    )
  }
  if (job) {
    pod.restartPolicy = s.restart === 'no' ? 'Never' : 'OnFailure'
    if (s.restart === 'on-failure' && s.maxRestarts === undefined) {
      ctx.losses.add(
        `services.${s.name}.restart`,
        'restart: on-failure restarts a failed process without limit; a Job gives up after backoffLimit retries',
        'a Job with restartPolicy OnFailure and Kubernetes\' default backoffLimit (6); write on-failure:N to choose it',
      )
    }
    const backoffLimit = s.restart === 'no' ? 0 : s.maxRestarts
    return new Job({
      metadata,
      spec: {
        ...(backoffLimit === undefined ? {} : {backoffLimit}),
        ...(v.replicas > 1 ? {parallelism: v.replicas, completions: v.replicas} : {}),
        template: {metadata: {labels, ...(annotations ? {annotations} : {})}, spec: pod},
      },
    })
  }
  return new Deployment({
    metadata,
    spec: {replicas: v.replicas, selector: {matchLabels: labels}, template: {metadata: {labels}, spec: pod}},
  })
}

/** Where a container runs: a Deployment's pod, a Job's, or a Knative revision's (which sets $PORT itself and names its port by protocol). */
export type ContainerHost = 'deployment' | 'job' | 'knative'

export function container(s: ServiceConfig, v: VersionConfig, ctx: ExportContext, where: string, host: ContainerHost): IContainer {
  const w = v.workload
  const port = containerPort(v)
  // Knative takes one port, named http1 or h2c (HTTP/2 cleartext, as gRPC speaks).
  const name = host === 'knative' ? (s.protocol === 'grpc' ? 'h2c' : 'http1') : portName(s)
  const base: IContainer = {
    name: s.name,
    image: imageOf(s, v, ctx, where),
    ports: [{name, containerPort: port, protocol: 'TCP'}],
    env: environment(s, v, ctx, port, host),
  }
  if (w.kind === 'command') base.args = commandArgs(w.command).map(literal)
  // A job others wait on to complete is not health-checked (configuration.md, "Dependencies, restarts and jobs").
  if (host !== 'job') base.readinessProbe = probe(s, host === 'knative' ? port : portName(s), port, ctx)
  return base
}

/**
 * Kubernetes expands `$(NAME)` in args, commands and env values itself; `$$(` is its escape.
 * meshsim leaves `$(…)` to the shell (command substitution), so it is kept literal.
 */
export function literal(text: string): string {
  return text.replaceAll('$(', '$$$$(')
}

/** A command with shell syntax runs through sh, as `mesh up` runs every command; a plain one as its words. */
export function commandArgs(command: string): string[] {
  if (/[$`"'\\|&;<>(){}*?~#\n]/.test(command)) return ['/bin/sh', '-c', command]
  return command.trim().split(/\s+/)
}

function imageOf(s: ServiceConfig, v: VersionConfig, ctx: ExportContext, where: string): string {
  const w = v.workload
  if (w.kind === 'simulate') return ctx.runnerImage
  if (w.image !== undefined) return w.image
  // As compose names the image it builds (`<project>-<service>`), and kompose exports one with
  // no image: a name the user can build and push, reported so it is not mistaken for a real one.
  const assumed = `${ctx.config.name}-${s.name}:${v.name}`
  // Relative to mesh.yaml, as written there: the same report wherever the checkout is.
  const cwd = w.kind === 'command' ? `./${path.relative(ctx.config.dir, w.cwd)}`.replace(/^\.\/$/, '.') : '.'
  ctx.losses.add(
    `${where}.image`,
    'no image: given; a cluster runs containers, not commands in a directory',
    `the image name ${assumed}: build it from ${cwd} (docker build -t ${assumed} ${cwd}) and push it where the cluster pulls from, or write image: in mesh.yaml`,
  )
  return assumed
}

/** The variables `mesh up` gives an instance (env-names.ts meshInstanceEnv), with the cluster's addresses. */
function environment(s: ServiceConfig, v: VersionConfig, ctx: ExportContext, port: number, host: ContainerHost): IEnvVar[] {
  const env: IEnvVar[] = Object.keys(v.env)
    .sort()
    .map((name) => ({name, value: literal(v.env[name])}))
  // Knative sets $PORT itself (and refuses it in env), and allows no fieldRef by default: there $HOSTNAME is the pod's name.
  const mesh: IEnvVar[] = [
    ...(host === 'knative' ? [] : [{name: EnvNames.port, value: String(port)}]),
    {name: EnvNames.service, value: s.name},
    {name: EnvNames.version, value: v.name},
    ...(host === 'knative' ? [] : [{name: EnvNames.instance, valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}}]),
  ]
  const byName = new Map(ctx.config.services.map((x) => [x.name, x]))
  for (const dep of s.dependsOn) {
    const target = byName.get(dep)
    if (!target) continue
    const host = serviceHost(dep, ctx.namespace)
    const depPort = servicePort(target)
    if (target.protocol !== 'tcp') mesh.push({name: dependencyEnvName(dep), value: `http://${host}:${depPort}`})
    if (target.protocol !== undefined) for (const [name, value] of Object.entries(dependencyAddressEnv(dep, host, depPort))) mesh.push({name, value})
  }
  if (v.workload.kind === 'simulate') {
    mesh.push({name: EnvNames.simulate, value: JSON.stringify(v.workload.simulate)})
    // The runner listens on every interface in a pod: the Service (and a sidecar) reach it at the pod's IP.
    mesh.push({name: EnvNames.listenHost, value: '0.0.0.0'})
  }
  // The mesh's variables win over the user's env, as meshInstanceEnv sets them last.
  const own = new Set(mesh.map((e) => e.name))
  return [...env.filter((e) => !own.has(e.name)), ...mesh]
}

/** `at`: the port as the probe names it (its name in a pod; its number in a Knative revision, which takes no other). */
function probe(s: ServiceConfig, at: string | number, port: number, ctx: ExportContext): IProbe {
  const h = s.health
  const where = `services.${s.name}.health`
  const timing = {
    periodSeconds: wholeSeconds(h.intervalMs, `${where}.interval`, ctx),
    timeoutSeconds: wholeSeconds(h.timeoutMs, `${where}.timeout`, ctx),
    successThreshold: h.healthyThreshold,
    failureThreshold: h.unhealthyThreshold,
  }
  if (h.command !== undefined) return {exec: {command: ['/bin/sh', '-c', literal(h.command)]}, ...timing}
  if (h.grpcService !== undefined) return {grpc: {port, ...(h.grpcService === '' ? {} : {service: h.grpcService})}, ...timing}
  if (h.path !== undefined) return {httpGet: {path: h.path, port: at}, ...timing}
  return {tcpSocket: {port: at}, ...timing}
}

/** Kubernetes counts these in whole seconds (probes at least 1): a finer value is rounded up and reported. */
export function wholeSeconds(ms: number, path: string, ctx: ExportContext, min = 1): number {
  const seconds = Math.max(min, Math.ceil(ms / 1000))
  if (seconds * 1000 !== ms) ctx.losses.add(path, `${ms} ms: Kubernetes counts this in whole seconds`, `${seconds}s`)
  return seconds
}
