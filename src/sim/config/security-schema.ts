// mesh.yaml's `security:` block and a service's `policy.mtls`: the trust domain and lifetime
// of workload certificates (workload-identity.ts) and the mesh-wide mTLS mode a service's own
// `policy.mtls` overrides, as Istio's mesh-wide PeerAuthentication and a workload's own.
//
//   security: {trustDomain: cluster.local, certTTL: 24h, mtls: PERMISSIVE}
//   services.api.policy.mtls: STRICT          ──mtlsModeOf(config, 'api')──▶ 'STRICT'
import {DEFAULT_TRUST_DOMAIN} from '../security/spiffe.js'
import {checker, def, describeNode, enumOf, map, obj, str} from './checker.js'
import {DURATION_PATTERN, formatDuration, missingUnit, parseDuration} from './duration.js'
import type {MeshConfig, MtlsMode, SecurityConfig} from './types.js'

/** Istio's PeerAuthentication modes; PERMISSIVE is its default, so a mesh without `security:` accepts plaintext too. */
export const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const satisfies readonly MtlsMode[]
export const mtlsMode = enumOf(MTLS_MODES)

/** Istio's workload certificates live 24h (its agent's SECRET_TTL). */
export const DEFAULT_CERT_TTL_MS = 24 * 3600_000
/** Rotation at half life every 5 s at the shortest: enough to watch it happen, not so often the mesh does little else. */
export const MIN_CERT_TTL_MS = 10_000
/** Istio's MAX_WORKLOAD_CERT_TTL: 90 days. */
export const MAX_CERT_TTL_MS = 90 * 24 * 3600_000

// A SPIFFE trust domain: lowercase letters, digits, dots, dashes and underscores (SPIFFE ID spec §2.1).
const trustDomain = str({pattern: /^[a-z0-9._-]+$/, expected: 'a trust domain of lowercase letters, digits, dots, dashes and underscores, like cluster.local'})

const certTtlExpected = `a certificate lifetime from ${formatDuration(MIN_CERT_TTL_MS)} to ${formatDuration(MAX_CERT_TTL_MS)} (90 days), like 24h`
const certTtl = checker<number>(
  certTtlExpected,
  (at) => {
    const v = at.value
    const ms = at.kind === 'scalar' && (typeof v === 'string' || typeof v === 'number') ? parseDuration(v) : undefined
    if (ms === undefined) return at.error(`expected ${certTtlExpected}, got ${describeNode(at.node)}${missingUnit(v)}`)
    if (ms < MIN_CERT_TTL_MS) return at.error(`expected ${certTtlExpected}, got ${describeNode(at.node)}: certificates are rotated at half their life, and more often than every ${formatDuration(MIN_CERT_TTL_MS / 2)} is no test of anything`)
    if (ms > MAX_CERT_TTL_MS) return at.error(`expected ${certTtlExpected}, got ${describeNode(at.node)}: workload certificates are meant to be short-lived (Istio allows at most 90 days)`)
    return ms
  },
  {description: certTtlExpected, type: 'string', pattern: DURATION_PATTERN},
)

export const security = map(
  obj({
    trustDomain: def(trustDomain, DEFAULT_TRUST_DOMAIN),
    certTTL: def(certTtl, DEFAULT_CERT_TTL_MS),
    mtls: def(mtlsMode, 'PERMISSIVE' as MtlsMode),
  }),
  (s): SecurityConfig => ({trustDomain: s.trustDomain, certTtlMs: s.certTTL, mtls: s.mtls}),
)

/** The mesh's security settings, defaults filled in where mesh.yaml has no `security:`. */
export function securityOf(config: Pick<MeshConfig, 'security'>): SecurityConfig {
  return config.security ?? {trustDomain: DEFAULT_TRUST_DOMAIN, certTtlMs: DEFAULT_CERT_TTL_MS, mtls: 'PERMISSIVE'}
}

/** The mTLS mode a service's inbound side runs: its own `policy.mtls`, else the mesh's `security.mtls`. */
export function mtlsModeOf(config: Pick<MeshConfig, 'security' | 'services'>, service: string): MtlsMode {
  return config.services.find((s) => s.name === service)?.policy.mtls ?? securityOf(config).mtls
}
