// gRPC on the mesh's HTTP/2 path. A gRPC call answers HTTP 200 and says how it went in
// `grpc-status` — in the trailers, or in the headers of a Trailers-Only answer (an error
// before any message). So that a failing gRPC service is seen as failing, the policies
// and the telemetry classify a gRPC status by the HTTP status Envoy maps it to
// (UNAVAILABLE → 503, DEADLINE_EXCEEDED → 504, INTERNAL → 500, NOT_FOUND → 404…): the same
// rule as for HTTP — below 500 is a success — drives retries (`on: [5xx]`, `gateway-error`),
// outlier detection, success rates and which traces are kept. And the mesh's own answers
// to a gRPC call (503 UH, 504 UT, 429 RL…) go out as gRPC statuses, which a gRPC client
// understands, with the flag and reason in the same headers as for HTTP.
import type {HeaderMap, HeaderPairs} from './headers.js'

/** The status codes of gRPC (grpc/doc/statuscodes.md), by number. */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number]

// Envoy's Grpc::Utility::grpcToHttpStatus, indexed by gRPC status.
const HTTP_OF_GRPC = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]

/** The HTTP status a gRPC status counts as (an unknown code as 500). */
export function httpStatusOfGrpc(code: number): number {
  return HTTP_OF_GRPC[code] ?? 500
}

/**
 * The gRPC status for the mesh's own reply (HTTP status and Envoy flag): a timeout is
 * DEADLINE_EXCEEDED and a rate limit RESOURCE_EXHAUSTED, as gRPC clients expect; the rest
 * follows gRPC's HTTP mapping (grpc/doc/http-grpc-status-mapping.md).
 */
export function grpcStatusOfReply(status: number, flag?: string): number {
  if (flag === 'UT') return 4
  if (flag === 'RL' || flag === 'TH') return 8
  if (flag === 'DC') return 1
  switch (status) {
    case 400:
      return 13
    case 401:
      return 16
    case 403:
      return 7
    case 404:
      return 12
    case 429:
    case 502:
    case 503:
    case 504:
      return 14
    default:
      return 2
  }
}

/** A gRPC call: HTTP/2 with content-type application/grpc (or +proto, +json…). */
export function isGrpcRequest(headers: HeaderMap): boolean {
  const type = headers['content-type']
  return typeof type === 'string' && type.startsWith('application/grpc')
}

/** The `grpc-status` in a header list, if any. */
export function grpcStatusIn(pairs: HeaderPairs | undefined): number | undefined {
  if (!pairs) return undefined
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i].length === 11 && pairs[i].toLowerCase() === 'grpc-status') {
      const code = Number(pairs[i + 1])
      return Number.isInteger(code) && code >= 0 ? code : 2
    }
  }
  return undefined
}

/** `grpc-message` is percent-encoded UTF-8: bytes outside printable ASCII, and %, as %XX. */
export function grpcMessage(text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** The status policies classify a response by: its HTTP status, or a gRPC status's HTTP equivalent. */
export function outcomeStatus(response: {status: number; grpcStatus?: number}): number {
  return response.grpcStatus === undefined ? response.status : httpStatusOfGrpc(response.grpcStatus)
}

/** `14 UNAVAILABLE` */
export function describeGrpcStatus(code: number): string {
  return `${code} ${GRPC_STATUS_NAMES[code] ?? 'UNKNOWN'}`
}

// grpc-timeout's units (PROTOCOL-HTTP2.md: TimeoutValue TimeoutUnit), in ms.
const TIMEOUT_UNIT_MS: Record<string, number> = {H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001}

/**
 * The deadline a gRPC client sent in `grpc-timeout` (`250m`, `5S`, `999871u`: at most 8
 * digits and a unit), in whole ms (at least 1), or undefined when absent or malformed — as
 * gRPC servers, a malformed one is ignored rather than refused.
 */
export function grpcTimeoutMs(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return undefined
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]]
  const digits = value.slice(0, -1)
  if (unit === undefined || !/^\d+$/.test(digits)) return undefined
  return Math.max(1, Math.ceil(Number(digits) * unit))
}
