// The request-authentication layer over a scripted inner service: the ingress's rules, then
// the service's; a request with no token goes on in the same tick; a caller that leaves while
// its token is checked gets nothing further called on its behalf.
import {exportJWK, generateKeyPair, type JWK, SignJWT, type CryptoKey} from 'jose'
import {beforeAll, describe, expect, test} from 'vitest'
import type {JwtRule} from '../../src/sim/config/types.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {requestAuthentication} from '../../src/sim/proxy/layers/request-authentication.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {type MeshRequest, type MeshResponse, type Service} from '../../src/sim/proxy/stack.js'
import {Authenticator} from '../../src/sim/security/jwt/authenticator.js'
import {staticKeys} from '../../src/sim/security/jwt/key-source.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {callContext, meshRequest} from '../helpers/proxy-context.js'

let key: CryptoKey
let jwk: JWK
beforeAll(async () => {
  const pair = await generateKeyPair('ES256', {extractable: true})
  key = pair.privateKey
  jwk = {...(await exportJWK(pair.publicKey)), kid: 'k'}
})

const clock = new VirtualClock(0, Date.now())
const sign = (iss: string, claims: Record<string, unknown> = {}) =>
  new SignJWT({sub: 'alice', ...claims}).setProtectedHeader({alg: 'ES256', kid: 'k'}).setIssuer(iss).setIssuedAt().setExpirationTime('1h').sign(key)
const authenticator = (rule: Partial<JwtRule> & {issuer: string}) => new Authenticator([{rule: {forwardOriginalToken: false, ...rule}, iss: rule.issuer, keys: staticKeys({keys: [jwk]})}])

/** The inner service: records what reached it, answers 200. */
function app() {
  const seen: MeshRequest[] = []
  const service: Service = (req, _ctx, reply) => {
    seen.push({...req, headers: {...req.headers}})
    reply.ok({status: 200, headers: [], body: null})
  }
  return {seen, service}
}

function call(service: Service, req: MeshRequest, controller = new Cancellation()) {
  const answer = new Promise<MeshResponse | ProxyError>((resolve) => service(req, callContext(clock, {controller}), {ok: resolve, fail: (e) => resolve(e as ProxyError)}))
  return {answer}
}

describe('request authentication layer', () => {
  test('no token: on at once (same tick), auth.outcome none', async () => {
    const {seen, service} = app()
    const layer = requestAuthentication(() => authenticator({issuer: 'mesh'}), () => undefined)(service)
    let reached = false
    layer(meshRequest(), callContext(clock), {ok: () => (reached = true), fail: () => undefined})
    expect(reached).toBe(true)
    expect(seen[0].auth).toEqual({outcome: 'none'})
  })

  test('through the ingress: its rule verifies (and strips) the token, the service\'s rule then finds none and keeps that verdict', async () => {
    const {seen, service} = app()
    const layer = requestAuthentication(() => authenticator({issuer: 'svc'}), () => authenticator({issuer: 'edge', outputClaimToHeaders: [{header: 'x-plan', claim: 'plan'}]}))(service)
    const req = meshRequest({peer: {identity: 'ingress', authn: 'listener'}, headers: {authorization: `Bearer ${await sign('edge', {plan: 'gold'})}`}})
    const answer = await call(layer, req).answer
    expect(answer).toMatchObject({status: 200})
    expect(seen[0].auth).toMatchObject({outcome: 'valid', principal: 'edge/alice', rule: 'edge'})
    expect(seen[0].headers).toEqual({'x-plan': 'gold'})
  })

  test('not through the ingress, the ingress\'s rules do not apply: the service\'s refuse a token of the ingress\'s issuer', async () => {
    const {seen, service} = app()
    const layer = requestAuthentication(() => authenticator({issuer: 'svc'}), () => authenticator({issuer: 'edge'}))(service)
    const headers = {authorization: `Bearer ${await sign('edge')}`, host: 'shop.test', 'x-forwarded-proto': 'https'}
    const answer = await call(layer, meshRequest({path: '/items?page=2', headers})).answer
    expect(answer).toBeInstanceOf(ProxyError)
    expect(answer).toMatchObject({status: 401, flag: 'JWT'})
    // RFC 6750's challenge; the reason's own quotes made single so the quoted-string holds.
    expect((answer as ProxyError).headers?.['www-authenticate']).toMatch(/^Bearer realm="https:\/\/shop\.test\/items", error="invalid_token", error_description="Jwt issuer is not configured: 'edge' is not/)
    expect(seen).toHaveLength(0)
  })

  test('the caller left while its token was checked: the abort is the answer, the app is not called', async () => {
    const {seen, service} = app()
    const layer = requestAuthentication(() => authenticator({issuer: 'svc'}), () => undefined)(service)
    const controller = new Cancellation()
    const gone = new ProxyError(499, 'DC', 'the caller closed the connection')
    const pending = call(layer, meshRequest({headers: {authorization: `Bearer ${await sign('svc')}`}}), controller)
    controller.abort(gone)
    expect(await pending.answer).toBe(gone)
    expect(seen).toHaveLength(0)
  })

  test('the caller left while the key set is still being fetched: answered at once, not when the fetch ends', async () => {
    const {seen, service} = app()
    let fetched!: (keys: undefined) => void
    const hanging = new Promise<undefined>((resolve) => (fetched = resolve))
    const keys = {current: () => hanging, refetch: async () => undefined, status: () => undefined}
    const layer = requestAuthentication(() => new Authenticator([{rule: {issuer: 'svc', forwardOriginalToken: false}, iss: 'svc', keys}]), () => undefined)(service)
    const controller = new Cancellation()
    const gone = new ProxyError(499, 'DC', 'the caller closed the connection')
    let answer: unknown
    layer(meshRequest({headers: {authorization: `Bearer ${await sign('svc')}`}}), callContext(clock, {controller}), {ok: (r) => (answer = r), fail: (e) => (answer = e)})
    controller.abort(gone)
    expect(answer).toBe(gone)
    fetched(undefined)
    await new Promise((resolve) => setImmediate(resolve))
    expect(answer).toBe(gone)
    expect(seen).toHaveLength(0)
  })
})
