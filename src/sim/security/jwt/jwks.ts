// A JSON Web Key Set as a jwtRule names it (inline, in a file, at a URL): parsed and checked
// the same way wherever it comes from, so `mesh validate` and a fetch at run time refuse the
// same sets with the same words. Synchronous (node:crypto imports a JWK at once), so the
// config checker can use it.
import {createPublicKey} from 'node:crypto'
import type {JSONWebKeySet, JWK} from 'jose'

/** What a token may be signed with: Istio's (Envoy's) list, less HMAC, which a JWKS of public keys cannot carry. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const

export type JwksCheck = {jwks: JSONWebKeySet; usable: number} | {error: string}

/**
 * `text` (or an already parsed value) as a JWKS with at least one key a token can be checked
 * with; keys that cannot (an unknown kty, `use: enc`, an algorithm not in JWT_ALGORITHMS,
 * broken parameters) are left out, as Envoy skips them.
 */
export function checkJwks(source: string | unknown): JwksCheck {
  let value: unknown = source
  if (typeof source === 'string') {
    try {
      value = JSON.parse(source)
    } catch (error) {
      return {error: `is not JSON (${(error as Error).message})`}
    }
  }
  const keys = (value as {keys?: unknown} | null)?.keys
  if (typeof value !== 'object' || value === null || !Array.isArray(keys)) return {error: 'is not a JWKS: expected a JSON object with a "keys" list'}
  // Public parameters only: a private key's `d` is never needed (nor wanted) to verify.
  const usable = keys.filter((k) => usableKey(k) === undefined).map((k) => publicPart(k as JWK))
  if (usable.length === 0) {
    const why = keys.length === 0 ? 'its "keys" list is empty' : `none of its ${keys.length} keys can verify a token (${usableKey(keys[0])})`
    return {error: `has no usable key: ${why}`}
  }
  return {jwks: {keys: usable}, usable: usable.length}
}

/** Why `key` cannot verify a JWT, or undefined when it can. */
function usableKey(key: unknown): string | undefined {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) return 'a key is not a JSON object'
  const k = key as JWK
  if (k.kty !== 'RSA' && k.kty !== 'EC' && k.kty !== 'OKP') return `kty ${JSON.stringify(k.kty)} is not RSA, EC or OKP`
  if (k.use !== undefined && k.use !== 'sig') return `use ${JSON.stringify(k.use)} is not sig`
  if (k.alg !== undefined && !(JWT_ALGORITHMS as readonly string[]).includes(k.alg)) return `alg ${JSON.stringify(k.alg)} is not one of ${JWT_ALGORITHMS.join(', ')}`
  try {
    createPublicKey({key: publicPart(k) as import('node:crypto').JsonWebKey, format: 'jwk'})
  } catch (error) {
    return `its ${k.kty} parameters are broken (${(error as Error).message})`
  }
  return undefined
}

function publicPart(k: JWK): JWK {
  const {d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...pub} = k as JWK & {oth?: unknown}
  return pub
}
