// What mesh.yaml's retry settings mean, shared by the schema and lint that check them
// (config/) and the retry layer that acts on them (proxy/): the gRPC names `retries.on`
// takes, and which methods may be replayed.
import type {GrpcRetryOn} from './types.js'

/** Envoy's x-envoy-retry-grpc-on names and the gRPC status each stands for. */
export const GRPC_RETRY_ON: Readonly<Record<GrpcRetryOn, number>> = {cancelled: 1, 'deadline-exceeded': 4, internal: 13, 'resource-exhausted': 8, unavailable: 14}
/** The gRPC names `retries.on` takes (mesh.yaml's schema lists them from here). */
export const GRPC_RETRY_NAMES = Object.keys(GRPC_RETRY_ON) as GrpcRetryOn[]

/** Methods that may be replayed without changing the result (RFC 9110 §9.2.2). */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'PUT':
    case 'DELETE':
    case 'TRACE':
      return true
    default:
      // Node hands methods upper-case; config may not.
      return method !== method.toUpperCase() && isIdempotent(method.toUpperCase())
  }
}
