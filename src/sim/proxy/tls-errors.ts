// What went wrong in a TLS handshake with an instance, as the user needs to read it:
// OpenSSL's verification codes (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE), Node's
// (ERR_TLS_CERT_ALTNAME_INVALID), the alerts a server sends back (ERR_SSL_*), and the
// mesh's own SPIFFE ID check (upstream-tls.ts).

/** The code the mesh's SPIFFE check gives a certificate for another identity. */
export const SPIFFE_MISMATCH = 'ERR_TLS_SPIFFE_ID_MISMATCH'

/** OpenSSL's X509_V_ERR names as Node reports a certificate it refused. */
const VERIFY_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
])

/** The error (or a cause of it, as node:http2 wraps a session's failure in its streams') that carries a TLS code. */
function tlsCause(error: unknown): (Error & {code?: string}) | undefined {
  let e = error as (Error & {code?: string; cause?: unknown}) | undefined
  for (let depth = 0; e && depth < 4; depth++, e = e.cause as typeof e) {
    const code = e.code
    if (code && (VERIFY_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code === 'EPROTO')) return e
    // The instance closed the socket mid-handshake (a TLS 1.2 server refusing our certificate, or none).
    if (code === 'ECONNRESET' && /before secure TLS connection/.test(e.message)) return e
  }
  return undefined
}

export function isTlsError(error: unknown): boolean {
  return tlsCause(error) !== undefined
}

/** `CERT_HAS_EXPIRED: certificate has expired`, one line, short enough for a header. */
export function tlsReason(error: unknown): string {
  const e: Error & {code?: string} = tlsCause(error) ?? (error as Error)
  const code = e.code ?? 'TLS'
  // OpenSSL's messages end with its own words after the last `:` ("...:tlsv13 alert certificate required").
  let message = e.message.replace(/\s+/g, ' ').trim()
  if (/SSL routines/.test(message)) message = message.slice(message.lastIndexOf(':') + 1).trim()
  if (code === 'ECONNRESET') message = 'the instance closed the connection during the TLS handshake (did it refuse our certificate?)'
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') message = 'the instance does not speak TLS on this port'
  const text = message.includes(code) ? message : `${code}: ${message}`
  return text.length > 300 ? `${text.slice(0, 297)}...` : text
}
