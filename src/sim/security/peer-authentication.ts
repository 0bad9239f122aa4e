// Istio's PeerAuthentication on an instance's published address, and what the callee is
// told of its caller (Envoy's x-forwarded-client-cert).
//
//   STRICT      TLS only, with a client certificate from the mesh CA: the caller is the SPIFFE ID in it
//   PERMISSIVE  that, or plaintext (an unidentified caller), on the same port: Istio's default
//   DISABLE     plaintext only
import type {X509Certificate} from 'node:crypto'
import type {Peer} from '../proxy/stack.js'
import {parseSpiffeId} from './spiffe.js'

/**
 * The caller a verified client certificate names: the service account of its SPIFFE URI SAN
 * (`spiffe://<td>/ns/<mesh>/sa/<service>`) is the service. None without such a SAN.
 */
export function peerOfCertificate(cert: Pick<X509Certificate, 'subjectAltName'>): Peer | undefined {
  const uri = spiffeUriOf(cert.subjectAltName)
  const parts = uri && parseSpiffeId(uri)
  return parts ? {identity: parts.serviceAccount, principal: uri, authn: 'mtls'} : undefined
}

/** The first `URI:spiffe://…` entry of node's subjectAltName text (`DNS:a, URI:spiffe://…`). */
function spiffeUriOf(san: string | undefined): string | undefined {
  if (!san) return undefined
  for (const entry of san.split(', ')) if (entry.startsWith('URI:spiffe://')) return entry.slice(4)
  return undefined
}

export const FORWARDED_CLIENT_CERT = 'x-forwarded-client-cert'

/**
 * Envoy's x-forwarded-client-cert element, `By=<callee>;Hash=<sha256 of the client cert>;URI=<caller>`
 * (Hash only when a certificate was presented on this hop: the in-process hop has none).
 */
export function forwardedClientCert(by: string, caller: string, certHash?: string): string {
  return certHash ? `By=${by};Hash=${certHash};URI=${caller}` : `By=${by};URI=${caller}`
}

