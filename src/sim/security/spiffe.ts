// Workload identity in Istio's form: `spiffe://<trustDomain>/ns/<namespace>/sa/<service account>`.
// The mesh's name plays the namespace and each service is its own service account, so a
// policy written here (`principals: [cluster.local/ns/shop/sa/frontend]`) reads as it would
// under Istio.

export const DEFAULT_TRUST_DOMAIN = 'cluster.local'

export function spiffeId(trustDomain: string, mesh: string, service: string): string {
  return `spiffe://${trustDomain}/ns/${mesh}/sa/${service}`
}

export interface SpiffeParts {
  trustDomain: string
  namespace: string
  serviceAccount: string
}

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/

/** The parts of an Istio-form SPIFFE ID, or undefined for any other URI. */
export function parseSpiffeId(uri: string): SpiffeParts | undefined {
  const m = SPIFFE.exec(uri)
  return m ? {trustDomain: m[1], namespace: m[2], serviceAccount: m[3]} : undefined
}

/**
 * Istio writes principals without the scheme (`cluster.local/ns/default/sa/sleep`); both forms
 * name the same identity, so policies may use either.
 */
export function principalOf(uri: string): string {
  return uri.startsWith('spiffe://') ? uri.slice('spiffe://'.length) : uri
}
