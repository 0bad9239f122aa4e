// Linkerd's policy objects (policy.linkerd.io: Server, AuthorizationPolicy,
// MeshTLSAuthentication, NetworkAuthentication) as typed models with a validate() of their
// own. No package among ours carries their CRD schemas, so each object is checked against
// the fields mesh export writes, with the types, required keys and allowed values Linkerd's
// reference documentation gives (linkerd.io/2/reference/authorization-policy): not the
// published CRD schema, but what fails it in the fields we emit — and a field of ours that
// the check does not know is refused, so a typo cannot pass.
import type {KubeObject} from './manifest.js'

interface Metadata {
  name: string
  namespace: string
  labels?: Record<string, string>
}

interface LabelSelector {
  matchLabels: Record<string, string>
}

/** A reference to an object (Gateway API's and Linkerd's policy attachment form). */
export interface ObjectRef {
  group?: string
  kind: string
  name: string
  namespace?: string
}

export const PROXY_PROTOCOLS = ['unknown', 'HTTP/1', 'HTTP/2', 'gRPC', 'opaque', 'TLS'] as const
/** The default policies of Linkerd (a Server's accessPolicy, the default-inbound-policy annotation). */
export const ACCESS_POLICIES = ['deny', 'all-authenticated', 'all-unauthenticated', 'cluster-authenticated', 'cluster-unauthenticated', 'audit'] as const
export type AccessPolicy = (typeof ACCESS_POLICIES)[number]

export interface ServerSpec {
  podSelector: LabelSelector
  /** A container port's name or number. */
  port: string | number
  proxyProtocol: (typeof PROXY_PROTOCOLS)[number]
  accessPolicy?: AccessPolicy
}

export interface AuthorizationPolicySpec {
  targetRef: ObjectRef
  requiredAuthenticationRefs: ObjectRef[]
}

export type MeshTLSAuthenticationSpec = {identities: string[]} | {identityRefs: ObjectRef[]}

export interface NetworkAuthenticationSpec {
  networks: Array<{cidr: string; except?: string[]}>
}

// ---------------------------------------------------------------------------------
// The check: a small schema language, enough for the fields above.

type Schema =
  | {type: 'string'; enum?: readonly string[]; pattern?: RegExp}
  | {type: 'port'}
  | {type: 'array'; items: Schema; minItems?: number}
  | {type: 'map'}
  | {type: 'object'; required?: readonly string[]; properties: Record<string, Schema>; oneOf?: ReadonlyArray<readonly string[]>}

/** RFC 1123 subdomain: what Kubernetes takes as an object's name. */
const NAME: Schema = {type: 'string', pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/}
const LABEL: Schema = {type: 'string', pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/}
const REF: Schema = {type: 'object', required: ['kind', 'name'], properties: {group: {type: 'string'}, kind: {type: 'string'}, name: NAME, namespace: LABEL}}
const METADATA: Schema = {type: 'object', required: ['name', 'namespace'], properties: {name: NAME, namespace: LABEL, labels: {type: 'map'}}}
const CIDR = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)\/\d{1,3}$/

const SPECS: Record<string, {apiVersion: string; spec: Schema}> = {
  Server: {
    apiVersion: 'policy.linkerd.io/v1beta3',
    spec: {
      type: 'object',
      required: ['podSelector', 'port'],
      properties: {
        podSelector: {type: 'object', required: ['matchLabels'], properties: {matchLabels: {type: 'map'}}},
        port: {type: 'port'},
        proxyProtocol: {type: 'string', enum: PROXY_PROTOCOLS},
        accessPolicy: {type: 'string', enum: ACCESS_POLICIES},
      },
    },
  },
  AuthorizationPolicy: {
    apiVersion: 'policy.linkerd.io/v1alpha1',
    spec: {
      type: 'object',
      required: ['targetRef', 'requiredAuthenticationRefs'],
      properties: {
        targetRef: {...REF, properties: {...REF.properties, kind: {type: 'string', enum: ['Server', 'HTTPRoute', 'GRPCRoute', 'Namespace']}}} as Schema,
        requiredAuthenticationRefs: {type: 'array', items: {...REF, properties: {...REF.properties, kind: {type: 'string', enum: ['MeshTLSAuthentication', 'NetworkAuthentication', 'ServiceAccount']}}} as Schema},
      },
    },
  },
  MeshTLSAuthentication: {
    apiVersion: 'policy.linkerd.io/v1alpha1',
    spec: {
      type: 'object',
      properties: {identities: {type: 'array', items: {type: 'string'}, minItems: 1}, identityRefs: {type: 'array', items: REF, minItems: 1}},
      oneOf: [['identities'], ['identityRefs']],
    },
  },
  NetworkAuthentication: {
    apiVersion: 'policy.linkerd.io/v1alpha1',
    spec: {
      type: 'object',
      required: ['networks'],
      properties: {networks: {type: 'array', minItems: 1, items: {type: 'object', required: ['cidr'], properties: {cidr: {type: 'string', pattern: CIDR}, except: {type: 'array', items: {type: 'string', pattern: CIDR}}}}}},
    },
  },
}

/** Every problem with `value` against `schema`, each as `path: what`. */
function problems(value: unknown, schema: Schema, at: string): string[] {
  const wrong = (what: string) => [`${at}: expected ${what}, got ${JSON.stringify(value)}`]
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return wrong('a string')
      if (schema.enum && !schema.enum.includes(value)) return wrong(`one of ${schema.enum.join(', ')}`)
      if (schema.pattern && !schema.pattern.test(value)) return wrong(`a string matching ${schema.pattern}`)
      return []
    case 'port':
      if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 65535 ? [] : wrong('a port from 1 to 65535')
      return typeof value === 'string' && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value) && value.length <= 15 ? [] : wrong("a port number or a container port's name")
    case 'map':
      if (!isObject(value)) return wrong('a map of strings')
      return Object.entries(value).flatMap(([k, v]) => (typeof v === 'string' ? [] : [`${at}.${k}: expected a string, got ${JSON.stringify(v)}`]))
    case 'array':
      if (!Array.isArray(value)) return wrong('a list')
      if (value.length < (schema.minItems ?? 0)) return wrong(`at least ${schema.minItems} item(s)`)
      return value.flatMap((v, i) => problems(v, schema.items, `${at}[${i}]`))
    case 'object': {
      if (!isObject(value)) return wrong('an object')
      const out: string[] = []
      for (const key of schema.required ?? []) if (value[key] === undefined) out.push(`${at}.${key}: required`)
      for (const [key, v] of Object.entries(value)) {
        if (v === undefined) continue
        const field = schema.properties[key]
        out.push(...(field ? problems(v, field, `${at}.${key}`) : [`${at}.${key}: not a field of this object`]))
      }
      if (schema.oneOf && schema.oneOf.filter((keys) => keys.every((k) => value[k] !== undefined)).length !== 1) {
        out.push(`${at}: expected exactly one of ${schema.oneOf.map((k) => k.join('+')).join(', ')}`)
      }
      return out
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

class LinkerdPolicyObject<Spec> implements KubeObject {
  readonly apiVersion: string
  constructor(
    readonly kind: keyof typeof SPECS,
    readonly metadata: Metadata,
    readonly spec: Spec,
  ) {
    this.apiVersion = SPECS[kind].apiVersion
  }

  validate(): void {
    const found = [...problems(this.metadata, METADATA, 'metadata'), ...problems(this.spec, SPECS[this.kind].spec, 'spec')]
    if (found.length > 0) throw new Error(`${this.apiVersion} ${this.kind} (checked against the fields Linkerd's reference gives): ${found.join('; ')}`)
  }

  toJSON(): unknown {
    return JSON.parse(JSON.stringify({apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec}))
  }
}

/** A model of one kind: typed by its spec, as kubernetes-models' are, checked by validate(). */
function policyModel<Spec>(kind: keyof typeof SPECS) {
  return class extends LinkerdPolicyObject<Spec> {
    constructor(d: {metadata: Metadata; spec: Spec}) {
      super(kind, d.metadata, d.spec)
    }
  }
}

export const Server = policyModel<ServerSpec>('Server')
export const AuthorizationPolicy = policyModel<AuthorizationPolicySpec>('AuthorizationPolicy')
export const MeshTLSAuthentication = policyModel<MeshTLSAuthenticationSpec>('MeshTLSAuthentication')
export const NetworkAuthentication = policyModel<NetworkAuthenticationSpec>('NetworkAuthentication')
