// Flagger's Canary and MetricTemplate (flagger.app/v1beta1) as objects the writer validates
// like the others. No npm package carries Flagger's CRD schema, so this is a schema of the
// fields mesh export writes, with their types, allowed values and required keys as Flagger's
// documentation gives them (docs.flagger.app: "How it works", "Metrics Analysis", "Webhooks"):
// a field of another type, a missing required key or one this file does not know is refused,
// as a published schema would refuse it. It checks what we write, not all Flagger accepts.
import type {KubeObject} from './manifest.js'

export const FLAGGER_API_VERSION = 'flagger.app/v1beta1'

/** Flagger's webhook types (docs: Webhooks). */
export const WEBHOOK_TYPES = ['confirm-rollout', 'pre-rollout', 'rollout', 'confirm-traffic-increase', 'confirm-promotion', 'post-rollout', 'rollback', 'event'] as const

export interface FlaggerCanarySpec {
  provider?: string
  targetRef: {apiVersion: string; kind: 'Deployment' | 'DaemonSet'; name: string}
  progressDeadlineSeconds?: number
  service: {
    name?: string
    port: number
    targetPort?: number | string
    portName?: string
    appProtocol?: string
    timeout?: string
    retries?: {attempts?: number; perTryTimeout?: string; retryOn?: string}
    /** An Istio DestinationRule's trafficPolicy, which Flagger copies into its own (checked by Istio's schema where it was made). */
    trafficPolicy?: Record<string, unknown>
    gatewayRefs?: Array<{name: string; namespace?: string; group?: string; kind?: string; port?: number}>
  }
  analysis: {
    interval: string
    threshold: number
    stepWeights?: number[]
    iterations?: number
    metrics?: Array<{name: string; interval?: string; thresholdRange?: {min?: number; max?: number}; templateRef?: {name: string; namespace?: string}}>
    webhooks?: Array<{name: string; type: (typeof WEBHOOK_TYPES)[number]; url: string; timeout?: string; metadata?: Record<string, string>}>
  }
}

export interface MetricTemplateSpec {
  provider: {type: 'prometheus'; address: string}
  query: string
}

interface Meta {
  name: string
  namespace: string
  labels?: Record<string, string>
}

// ---------------------------------------------------------------------------------
// A small schema language: enough for the fields above, each failure naming its path.

type Schema =
  | {type: 'string'; enum?: readonly string[]; pattern?: RegExp}
  | {type: 'integer'; min?: number; max?: number}
  | {type: 'number'}
  | {type: 'int-or-string'}
  | {type: 'array'; items: Schema; minItems?: number}
  | {type: 'object'; properties: Record<string, Schema>; required?: readonly string[]}
  | {type: 'map'; values: Schema}
  /** Checked where it was made (an Istio trafficPolicy): an object. */
  | {type: 'any-object'}

const str = (o: {enum?: readonly string[]; pattern?: RegExp} = {}): Schema => ({type: 'string', ...o})
const int = (min?: number, max?: number): Schema => ({type: 'integer', min, max})
const obj = (properties: Record<string, Schema>, required: readonly string[] = []): Schema => ({type: 'object', properties, required})
/** A Go duration as Flagger parses them: `1m`, `30s`, `500ms`. */
const duration = str({pattern: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/})
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const metadata = obj({name: str({pattern: DNS_LABEL}), namespace: str({pattern: DNS_LABEL}), labels: {type: 'map', values: str()}}, ['name', 'namespace'])

const canarySchema = obj(
  {
    apiVersion: str({enum: [FLAGGER_API_VERSION]}),
    kind: str({enum: ['Canary']}),
    metadata,
    spec: obj(
      {
        provider: str(),
        targetRef: obj({apiVersion: str(), kind: str({enum: ['Deployment', 'DaemonSet']}), name: str({pattern: DNS_LABEL})}, ['apiVersion', 'kind', 'name']),
        progressDeadlineSeconds: int(1),
        service: obj(
          {
            name: str({pattern: DNS_LABEL}),
            port: int(1, 65535),
            targetPort: {type: 'int-or-string'},
            portName: str(),
            appProtocol: str(),
            timeout: duration,
            retries: obj({attempts: int(0), perTryTimeout: duration, retryOn: str()}),
            trafficPolicy: {type: 'any-object'},
            gatewayRefs: {type: 'array', items: obj({name: str(), namespace: str(), group: str(), kind: str(), port: int(1, 65535)}, ['name'])},
          },
          ['port'],
        ),
        analysis: obj(
          {
            interval: duration,
            threshold: int(1),
            stepWeights: {type: 'array', items: int(1, 100), minItems: 1},
            iterations: int(1),
            metrics: {
              type: 'array',
              items: obj({name: str(), interval: duration, thresholdRange: obj({min: {type: 'number'}, max: {type: 'number'}}), templateRef: obj({name: str(), namespace: str()}, ['name'])}, ['name']),
            },
            webhooks: {
              type: 'array',
              items: obj({name: str(), type: str({enum: WEBHOOK_TYPES}), url: str({pattern: /^https?:\/\//}), timeout: duration, metadata: {type: 'map', values: str()}}, ['name', 'url']),
            },
          },
          ['interval', 'threshold'],
        ),
      },
      ['targetRef', 'service', 'analysis'],
    ),
  },
  ['apiVersion', 'kind', 'metadata', 'spec'],
)

const metricTemplateSchema = obj(
  {
    apiVersion: str({enum: [FLAGGER_API_VERSION]}),
    kind: str({enum: ['MetricTemplate']}),
    metadata,
    spec: obj({provider: obj({type: str({enum: ['prometheus']}), address: str({pattern: /^https?:\/\//})}, ['type']), query: str()}, ['provider', 'query']),
  },
  ['apiVersion', 'kind', 'metadata', 'spec'],
)

/** Every problem of `value` against `schema`, as `path: what`. */
export function schemaProblems(value: unknown, schema: Schema, path = ''): string[] {
  const at = path || '.'
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return [`${at}: expected a string`]
      if (schema.enum && !schema.enum.includes(value)) return [`${at}: expected one of ${schema.enum.join(', ')}, got "${value}"`]
      if (schema.pattern && !schema.pattern.test(value)) return [`${at}: "${value}" does not match ${schema.pattern}`]
      return []
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return [`${at}: expected an integer`]
      if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) return [`${at}: ${value} is out of range`]
      return []
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? [] : [`${at}: expected a number`]
    case 'int-or-string':
      return (typeof value === 'number' && Number.isInteger(value)) || typeof value === 'string' ? [] : [`${at}: expected an integer or a string`]
    case 'any-object':
      return isObject(value) ? [] : [`${at}: expected an object`]
    case 'array':
      if (!Array.isArray(value)) return [`${at}: expected an array`]
      if (schema.minItems !== undefined && value.length < schema.minItems) return [`${at}: expected at least ${schema.minItems} items`]
      return value.flatMap((item, i) => schemaProblems(item, schema.items, `${path}[${i}]`))
    case 'map':
      if (!isObject(value)) return [`${at}: expected an object`]
      return Object.entries(value).flatMap(([k, v]) => schemaProblems(v, schema.values, `${path}.${k}`))
    case 'object': {
      if (!isObject(value)) return [`${at}: expected an object`]
      const out: string[] = []
      for (const key of schema.required ?? []) if (value[key] === undefined) out.push(`${path}.${key}: required`)
      for (const [key, v] of Object.entries(value)) {
        if (v === undefined) continue
        const inner = schema.properties[key]
        if (!inner) out.push(`${path}.${key}: not a field mesh export knows of ${at === '.' ? 'the object' : at}`)
        else out.push(...schemaProblems(v, inner, `${path}.${key}`))
      }
      return out
    }
  }
}

abstract class FlaggerObject<Spec> implements KubeObject {
  readonly apiVersion = FLAGGER_API_VERSION
  abstract readonly kind: string
  protected abstract readonly schema: Schema

  constructor(
    readonly metadata: Meta,
    readonly spec: Spec,
  ) {}

  validate(): void {
    const problems = schemaProblems(this.toJSON(), this.schema)
    if (problems.length > 0) throw new Error(`${this.kind} (checked against mesh export's schema of Flagger's fields): ${problems.join('; ')}`)
  }

  toJSON(): Record<string, unknown> {
    // Through JSON: undefined fields dropped, as the models' toJSON drops them.
    return JSON.parse(JSON.stringify({apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec})) as Record<string, unknown>
  }
}

export class FlaggerCanary extends FlaggerObject<FlaggerCanarySpec> {
  readonly kind = 'Canary'
  protected readonly schema = canarySchema
}

export class FlaggerMetricTemplate extends FlaggerObject<MetricTemplateSpec> {
  readonly kind = 'MetricTemplate'
  protected readonly schema = metricTemplateSchema
}
