// What a hop's spans say of its transport, for Istio's metric labels: the request's
// protocol, whether a socket of the hop carried mutual TLS, and the identities proven on it.
//
//   mutual_tls  the caller proved its certificate at a published address (mTLS), or the mesh
//               presented one to the instance (policy.tls ISTIO_MUTUAL / MUTUAL)
//   none        every socket of the hop was plaintext (a call through <DEP>_URL goes from the
//               app's loopback socket to the instance's inside this process: nothing to encrypt)
import {parseSpiffeId, spiffeId} from '../security/spiffe.js'
import type {HopSecurity} from '../telemetry/span.js'
import {isGrpcRequest} from './grpc.js'
import type {CallContext, MeshRequest} from './stack.js'

// Shared answers for the plaintext hops nearly every span has: nothing allocated for them.
const PLAIN_HTTP: HopSecurity = {protocol: 'http', mtls: false}
const PLAIN_GRPC: HopSecurity = {protocol: 'grpc', mtls: false}

export function hopSecurity(req: MeshRequest, ctx: CallContext): HopSecurity {
  const protocol = isGrpcRequest(req.headers) ? 'grpc' : 'http'
  const upstream = ctx.upstreamTls
  const peerMtls = req.peer.authn === 'mtls'
  if (!peerMtls && (!upstream || upstream.mode === 'SIMPLE')) return protocol === 'grpc' ? PLAIN_GRPC : PLAIN_HTTP
  return {
    protocol,
    mtls: true,
    sourcePrincipal: (peerMtls ? req.peer.principal : undefined) ?? upstream?.source,
    destinationPrincipal: upstream?.destination ?? (peerMtls ? calleeOf(req.peer.principal, req.destination) : undefined),
  }
}

/** The callee's SPIFFE ID beside its caller's: the published address presented it, in the caller's trust domain and mesh. */
function calleeOf(caller: string | undefined, destination: string): string | undefined {
  const parts = caller ? parseSpiffeId(caller) : undefined
  return parts && spiffeId(parts.trustDomain, parts.namespace, destination)
}
