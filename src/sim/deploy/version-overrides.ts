// A deploy's new version: a `versions:` entry of mesh.yaml, or one made on the fly
// from the current version with CLI overrides (--command, --env, --set).
import {missingUnit, parseDuration, parseRatio} from '../config/duration.js'
import type {ServiceConfig, SimulateConfig, VersionConfig} from '../config/types.js'
import {MeshError} from '../errors.js'
import type {VersionOverrides} from './deploy-types.js'

/** Keys `--set simulate.KEY=VALUE` may change, mapped to SimulateConfig. */
const SIMULATE_KEYS: Record<string, (s: SimulateConfig, v: string) => void> = {
  errorRate: (s, v) => (s.errorRate = ratio(v)),
  errorStatus: (s, v) => (s.errorStatus = int(v)),
  // A percentile set by hand makes the latency a log-normal: an exponential's or empirical's own parameters would override it.
  'latency.p50': (s, v) => (s.latency = {p50Ms: ms(v), p99Ms: s.latency.p99Ms}),
  'latency.p99': (s, v) => (s.latency = {p50Ms: s.latency.p50Ms, p99Ms: ms(v)}),
  latency: (s, v) => (s.latency = {p50Ms: ms(v), p99Ms: ms(v)}),
  concurrency: (s, v) => (s.concurrency = int(v)),
  seed: (s, v) => (s.seed = int(v)),
}

export function resolveVersion(service: ServiceConfig, to: string, base: string | undefined, overrides?: VersionOverrides): VersionConfig {
  const declared = service.versions.find((v) => v.name === to)
  const from = declared ?? service.versions.find((v) => v.name === base) ?? service.versions[0]
  if (!declared && !overrides?.command && !overrides?.env && !overrides?.set) {
    throw new MeshError('MESH_VERSION_NOT_FOUND', `service "${service.name}" has no version "${to}".`, {
      hints: [
        `Declare it under services.${service.name}.versions in mesh.yaml, or make one on the fly with --command, --env K=V or --set simulate.errorRate=0.2.`,
        `Its versions: ${service.versions.map((v) => v.name).join(', ')}`,
      ],
    })
  }
  const version: VersionConfig = structuredClone({...from, name: to})
  if (overrides?.command) {
    const cwd = from.workload.kind === 'command' ? from.workload.cwd : process.cwd()
    version.workload = {kind: 'command', command: overrides.command, cwd}
  }
  if (overrides?.env) version.env = {...version.env, ...overrides.env}
  for (const [key, value] of Object.entries(overrides?.set ?? {})) {
    const field = key.replace(/^simulate\./, '')
    const apply = SIMULATE_KEYS[field]
    if (!key.startsWith('simulate.') || !apply) {
      throw new MeshError('MESH_BAD_FLAG', `--set ${key}: expected one of ${Object.keys(SIMULATE_KEYS).map((k) => `simulate.${k}`).join(', ')}`)
    }
    if (version.workload.kind !== 'simulate') {
      throw new MeshError('MESH_BAD_FLAG', `--set ${key}: version ${from.name} of "${service.name}" is not a simulated service`)
    }
    apply(version.workload.simulate, value)
  }
  return version
}

function ratio(v: string): number {
  const n = parseRatio(v)
  if (n === undefined) throw new MeshError('MESH_BAD_FLAG', `expected a ratio 0..1 or a percent, got "${v}"`)
  return n
}

function int(v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new MeshError('MESH_BAD_FLAG', `expected a non-negative integer, got "${v}"`)
  return n
}

function ms(v: string): number {
  const n = parseDuration(v)
  if (n === undefined) throw new MeshError('MESH_BAD_FLAG', `expected a duration like 20ms, got "${v}"${missingUnit(v)}`)
  return n
}
