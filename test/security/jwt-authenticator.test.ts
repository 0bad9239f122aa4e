// Request authentication without a mesh: real tokens (jose, RS256 / ES256 / EdDSA) against
// compiled jwtRules, key sets given inline or fetched through a loader the test controls, on
// a VirtualClock so the 20-minute refresh and the refetch limit are exact.
import {createLocalJWKSet, exportJWK, generateKeyPair, type JWK, SignJWT, type CryptoKey} from 'jose'
import {beforeAll, describe, expect, test} from 'vitest'
import type {JwtRule} from '../../src/sim/config/types.js'
import {Authenticator, forwardVerified, MAX_TOKEN_BYTES} from '../../src/sim/security/jwt/authenticator.js'
import {FetchedKeys, JWKS_REFETCH_MIN_MS, JWKS_REFRESH_MS, type KeySource, staticKeys} from '../../src/sim/security/jwt/key-source.js'
import {checkJwks} from '../../src/sim/security/jwt/jwks.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const ISS = 'https://idp.example'
/** The VirtualClock's wall time at 0 (its default epoch). */
const EPOCH_S = 1_700_000_000

interface Signer {
  key: CryptoKey
  jwk: JWK
  alg: string
}

async function signer(alg: 'RS256' | 'ES256' | 'EdDSA', kid: string): Promise<Signer> {
  const {privateKey, publicKey} = await generateKeyPair(alg, {extractable: true})
  return {key: privateKey, jwk: {...(await exportJWK(publicKey)), kid, alg}, alg}
}

function token(s: Signer, claims: Record<string, unknown> = {}, o: {iss?: string; exp?: number; nbf?: number; aud?: string; kid?: string} = {}): Promise<string> {
  const jwt = new SignJWT({sub: 'alice', ...claims})
    .setProtectedHeader({alg: s.alg, kid: o.kid ?? s.jwk.kid})
    .setIssuer(o.iss ?? ISS)
    .setIssuedAt(EPOCH_S)
    .setExpirationTime(o.exp ?? EPOCH_S + 3600)
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf)
  if (o.aud) jwt.setAudience(o.aud)
  return jwt.sign(s.key)
}

const rule = (extra: Partial<JwtRule> = {}): JwtRule => ({issuer: ISS, forwardOriginalToken: false, ...extra})
const bearer = (t: string) => ({authorization: `Bearer ${t}`})

let rsa: Signer
let ec: Signer
let ed: Signer
let other: Signer
beforeAll(async () => {
  ;[rsa, ec, ed, other] = await Promise.all([signer('RS256', 'r1'), signer('ES256', 'e1'), signer('EdDSA', 'd1'), signer('ES256', 'e1')])
})

function inline(rules: JwtRule[], keys: JWK[]): Authenticator {
  return new Authenticator(rules.map((r) => ({rule: r, iss: r.issuer, keys: staticKeys({keys})})))
}

async function verdict(a: Authenticator, headers: Record<string, string>, path = '/items') {
  const found = a.find(headers, path)
  if (!found) return {outcome: 'none' as const}
  return a.verify(found, EPOCH_S * 1000 + 1000)
}

describe('a token that is present must be valid', () => {
  test.each(['RS256', 'ES256', 'EdDSA'])('%s: valid, with Istio\'s request principal iss/sub and the claims', async (alg) => {
    const s = alg === 'RS256' ? rsa : alg === 'ES256' ? ec : ed
    const a = inline([rule()], [rsa.jwk, ec.jwk, ed.jwk])
    const v = await verdict(a, bearer(await token(s, {plan: 'gold'})))
    expect(v.outcome).toBe('valid')
    if (v.outcome !== 'valid') return
    expect(v.principal).toBe(`${ISS}/alice`)
    expect(v.claims.plan).toBe('gold')
  })

  test.each([
    // Each for its own reason only: the others hold (the audience is shop but in its own case).
    ['expired (beyond the 60 s of skew)', () => token(ec, {}, {aud: 'shop', exp: EPOCH_S - 120}), /^Jwt is expired/],
    ['not yet valid', () => token(ec, {}, {aud: 'shop', nbf: EPOCH_S + 3600}), /^Jwt not yet valid/],
    ['for another audience', () => token(ec, {}, {aud: 'billing'}), /^Audiences in Jwt are not allowed .*"billing"/],
    ['without an audience', () => token(ec), /^Audiences in Jwt are not allowed \(aud null/],
    ['from an issuer no rule names', () => token(ec, {}, {aud: 'shop', iss: 'https://evil.example'}), /^Jwt issuer is not configured: "https:\/\/evil.example"/],
    ['signed by another key with the same kid', () => token(other, {}, {aud: 'shop'}), /^Jwt verification fails: the signature/],
    ['with a kid the set lacks', () => token(ec, {}, {aud: 'shop', kid: 'nope'}), /^Jwks doesn't have key to match kid/],
  ])('%s: refused with the reason', async (_, make, reason) => {
    const a = inline([rule({audiences: ['shop']})], [ec.jwk])
    const v = await verdict(a, bearer(await make()))
    expect(v.outcome).toBe('invalid')
    if (v.outcome === 'invalid') expect(v.reason).toMatch(reason)
  })

  test('alg none is refused before any key is looked at', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const unsigned = `${enc({alg: 'none'})}.${enc({iss: ISS, sub: 'mallory'})}.`
    const v = await verdict(inline([rule()], [ec.jwk]), bearer(unsigned))
    expect(v).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwt header \[alg\] "none" is not supported/)})
  })

  test('a token larger than the bound is refused unread; garbage is refused, never thrown', async () => {
    const a = inline([rule()], [ec.jwk])
    const big = `${'a'.repeat(MAX_TOKEN_BYTES)}.b.c`
    expect(await verdict(a, bearer(big))).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwt is too large/)})
    expect(await verdict(a, bearer('not-a-jwt'))).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/two dots/)})
    expect(await verdict(a, bearer('%%%.%%%.%%%'))).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/base64url/)})
  })
})

describe('a verified token is remembered, as Envoy caches them', () => {
  test('the same token again is answered from the cache: the claims are the very object verified first', async () => {
    const a = inline([rule()], [ec.jwk])
    const t = await token(ec)
    const first = await verdict(a, bearer(t))
    const again = await verdict(a, bearer(t))
    expect(first.outcome).toBe('valid')
    expect(again.outcome === 'valid' && first.outcome === 'valid' && again.claims === first.claims).toBe(true)
  })

  test('a remembered token still expires, and says so', async () => {
    const a = inline([rule()], [ec.jwk])
    const t = await token(ec, {}, {exp: EPOCH_S + 10})
    expect((await verdict(a, bearer(t))).outcome).toBe('valid')
    // exp + the 60 s of skew has passed.
    const late = await a.verify(a.find(bearer(t), '/')!, (EPOCH_S + 71) * 1000)
    expect(late).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwt is expired/)})
  })

  test('a new key set checks remembered tokens again: a key taken out refuses them', async () => {
    let set = createLocalJWKSet({keys: [ec.jwk]})
    const keys: KeySource = {current: () => set, refetch: async () => undefined, status: () => undefined}
    const a = new Authenticator([{rule: rule(), iss: ISS, keys}])
    const t = await token(ec)
    expect((await verdict(a, bearer(t))).outcome).toBe('valid')
    set = createLocalJWKSet({keys: [rsa.jwk]})
    expect(await verdict(a, bearer(t))).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwks doesn't have key/)})
  })

  test('a remembered token found where its rule does not look is not its token', async () => {
    const headerOnly = rule({fromHeaders: [{name: 'x-jwt', prefix: ''}]})
    const paramOnly: JwtRule = {issuer: 'https://other.example', forwardOriginalToken: false, fromParams: ['token']}
    const a = inline([headerOnly, paramOnly], [ec.jwk])
    const t = await token(ec)
    expect((await verdict(a, {'x-jwt': t})).outcome).toBe('valid')
    expect(await verdict(a, {}, `/items?token=${t}`)).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwt issuer is not configured/)})
  })

  test('a query parameter spelt with %-escapes is still found', async () => {
    const a = inline([rule()], [ec.jwk])
    const t = await token(ec)
    expect(a.find({}, `/items?access%5Ftoken=${t}`)?.token).toBe(t)
  })
})

describe('where the token is, and what reaches the app', () => {
  test('no token, or another scheme (Basic), is no token: authentication refuses no one', async () => {
    const a = inline([rule()], [ec.jwk])
    expect(a.find({}, '/')).toBeUndefined()
    expect(a.find({authorization: 'Basic YWxpY2U6c2VjcmV0'}, '/')).toBeUndefined()
  })

  test('by default: Authorization Bearer (any case) and ?access_token=; the token is removed once verified', async () => {
    const a = inline([rule()], [ec.jwk])
    const t = await token(ec)
    expect(a.find({authorization: `bearer ${t}`}, '/')?.token).toBe(t)
    const v = await verdict(a, {}, `/items?x=a%20b&access_token=${t}&y=1`)
    expect(v.outcome).toBe('valid')
    if (v.outcome !== 'valid') return
    const headers = {}
    // The rest of the query as it was written.
    expect(forwardVerified(v, headers, `/items?x=a%20b&access_token=${t}&y=1`)).toBe('/items?x=a%20b&y=1')
    expect(forwardVerified(v, headers, `/items?access_token=${t}`)).toBe('/items')
  })

  test('fromHeaders with a prefix, outputs to headers, forwardOriginalToken keeps it', async () => {
    const r = rule({
      fromHeaders: [{name: 'x-jwt', prefix: 'Token '}],
      forwardOriginalToken: true,
      outputPayloadToHeader: 'x-jwt-payload',
      outputClaimToHeaders: [{header: 'x-plan', claim: 'plan'}, {header: 'x-team', claim: 'org.team'}, {header: 'x-groups', claim: 'groups'}],
    })
    const a = inline([r], [ec.jwk])
    expect(a.outputHeaders).toEqual(['x-jwt-payload', 'x-plan', 'x-team', 'x-groups'])
    const t = await token(ec, {plan: 'gold', org: {team: 'core'}, groups: ['admin', 'ops']})
    // The default location is not this rule's.
    expect(a.find(bearer(t), '/')).toBeUndefined()
    const headers: Record<string, string> = {'x-jwt': `Token ${t}`}
    const v = await verdict(a, headers)
    expect(v.outcome).toBe('valid')
    if (v.outcome !== 'valid') return
    forwardVerified(v, headers, '/')
    expect(headers).toMatchObject({'x-jwt': `Token ${t}`, 'x-plan': 'gold', 'x-team': 'core', 'x-groups': 'admin,ops', 'x-jwt-payload': t.split('.')[1]})
    expect(JSON.parse(Buffer.from(headers['x-jwt-payload'], 'base64url').toString())).toMatchObject({plan: 'gold', sub: 'alice'})
  })

  test('an empty header is no token: the next location is looked at', async () => {
    const a = inline([rule({fromHeaders: [{name: 'x-a'}, {name: 'x-b'}]})], [ec.jwk])
    const t = await token(ec)
    expect(a.find({'x-a': ' ', 'x-b': t}, '/')).toEqual({token: t, location: {header: 'x-b', prefix: ''}})
  })

  test('the token removed (the header), the path untouched', async () => {
    const a = inline([rule()], [ec.jwk])
    const headers: Record<string, string> = {...bearer(await token(ec)), accept: '*/*'}
    const v = await verdict(a, headers)
    if (v.outcome !== 'valid') throw new Error(JSON.stringify(v))
    expect(forwardVerified(v, headers, '/items?a=1')).toBe('/items?a=1')
    expect(headers).toEqual({accept: '*/*'})
  })

  test('a token in a location only another issuer\'s rule reads is not that rule\'s', async () => {
    const a = inline([rule({fromParams: ['jwt']}), {issuer: 'other', forwardOriginalToken: false}], [ec.jwk])
    const v = await verdict(a, bearer(await token(ec)))
    expect(v).toMatchObject({outcome: 'invalid', reason: expect.stringMatching(/^Jwt issuer is not configured/)})
  })
})

describe('a fetched key set (jwksUri)', () => {
  function fetched(clock: VirtualClock, served: {jwks: string; fail?: string; fault?: string}) {
    let loads = 0
    const keys = new FetchedKeys({
      owner: 'orders',
      issuer: ISS,
      uri: 'http://auth/jwks.json',
      clock,
      load: async () => {
        loads++
        if (served.fail) throw new Error(served.fail)
        return served.jwks
      },
      unavailable: () => served.fault,
    })
    return {keys, loads: () => loads, authenticator: new Authenticator([{rule: rule(), iss: ISS, keys}])}
  }
  const set = (...jwks: JWK[]) => JSON.stringify({keys: jwks})

  test('a rotation (a kid it lacks) is fetched at once, but at most once a second', async () => {
    const clock = new VirtualClock()
    const served = {jwks: set(ec.jwk)}
    const f = fetched(clock, served)
    f.keys.start()
    const now = EPOCH_S * 1000
    expect((await f.authenticator.verify(f.authenticator.find(bearer(await token(ec)), '/')!, now)).outcome).toBe('valid')
    expect(f.loads()).toBe(1)

    const rotated = await signer('ES256', 'e2')
    served.jwks = set(ec.jwk, rotated.jwk)
    const t2 = await token(rotated)
    // Within a second of the last fetch: no fetch, refused.
    expect(await f.authenticator.verify(f.authenticator.find(bearer(t2), '/')!, now)).toMatchObject({outcome: 'invalid'})
    expect(f.loads()).toBe(1)
    await clock.advance(JWKS_REFETCH_MIN_MS)
    expect((await f.authenticator.verify(f.authenticator.find(bearer(t2), '/')!, now)).outcome).toBe('valid')
    expect(f.loads()).toBe(2)
    expect(f.keys.status()).toMatchObject({owner: 'orders', kids: ['e1', 'e2'], fetches: 2})
  })

  test('refreshed after 20 minutes; a failing refresh keeps the cached keys (as istiod) and says so', async () => {
    const clock = new VirtualClock()
    const served: {jwks: string; fail?: string} = {jwks: set(ec.jwk)}
    const f = fetched(clock, served)
    f.keys.start()
    await clock.advance(JWKS_REFRESH_MS)
    served.fail = 'ECONNREFUSED'
    const t = await token(ec)
    const v = await f.authenticator.verify(f.authenticator.find(bearer(t), '/')!, EPOCH_S * 1000)
    expect(v.outcome).toBe('valid')
    await clock.advance(0)
    expect(f.loads()).toBe(2)
    expect(f.keys.status()).toMatchObject({kids: ['e1'], error: 'fetching http://auth/jwks.json failed: ECONNREFUSED'})
  })

  test('with nothing fetched, a token is refused: Jwks remote fetch is failed; a fault names itself', async () => {
    const clock = new VirtualClock()
    const f = fetched(clock, {jwks: set(ec.jwk), fault: 'f3'})
    f.keys.start()
    const v = await f.authenticator.verify(f.authenticator.find(bearer(await token(ec)), '/')!, EPOCH_S * 1000)
    expect(v).toMatchObject({outcome: 'invalid', reason: expect.stringContaining('Jwks remote fetch is failed: fetching http://auth/jwks.json failed: fault f3 (--jwks-unavailable)')})
    expect(f.loads()).toBe(0)
  })
})

describe('a JWKS is checked the same wherever it comes from', () => {
  test.each([
    ['{', /^is not JSON/],
    ['[]', /^is not a JWKS/],
    ['{"keys": []}', /^has no usable key: its "keys" list is empty/],
    ['{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', /^has no usable key: .*kty "oct"/],
    ['{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}', /^has no usable key: .*parameters are broken/],
    ['{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}', /^has no usable key: .*use "enc"/],
  ])('%s', (text, error) => {
    const checked = checkJwks(text)
    expect('error' in checked && checked.error).toMatch(error)
  })

  test('unusable keys are left out, usable ones kept, and only their public parts', () => {
    const checked = checkJwks({keys: [{kty: 'oct', k: 'x'}, ec.jwk, {...ec.jwk, kid: 'private', d: 'c2VjcmV0'}]})
    expect(checked).toEqual({jwks: {keys: [ec.jwk, {...ec.jwk, kid: 'private'}]}, usable: 2})
  })
})
