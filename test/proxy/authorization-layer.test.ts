// The authorization layer in its two places: the caller's stack (under the client span) and
// an instance's published address (under the server span, which then carries the decision).
// Spans say who called, what vouched for it, its token and the rule that decided.
import {describe, expect, test} from 'vitest'
import type {AuthorizationConfig} from '../../src/sim/config/types.js'
import type {Endpoint} from '../../src/sim/proxy/registry.js'
import {authorization} from '../../src/sim/proxy/layers/authorization.js'
import {serverSpan} from '../../src/sim/proxy/layers/server-span.js'
import {trace} from '../../src/sim/proxy/layers/trace.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {callService, stack, type MeshRequest} from '../../src/sim/proxy/stack.js'
import type {TelemetrySink} from '../../src/sim/proxy/telemetry-sink.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {renderWaterfall} from '../../src/sim/telemetry/waterfall.js'
import {toOtlpSpan} from '../../src/sim/telemetry/export-otlp.js'
import {toZipkinSpan} from '../../src/sim/telemetry/export-zipkin.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {callContext, fromAsync, meshRequest} from '../helpers/proxy-context.js'

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend'
const POLICY: AuthorizationConfig = {
  allow: [{principals: ['cluster.local/ns/shop/sa/frontend']}, {requestPrincipals: ['mesh/*'], when: [{key: 'request.auth.claims[plan]', values: ['gold']}]}],
  deny: [{paths: ['/admin/*']}],
}

function harness(inbound: boolean) {
  const spans: Span[] = []
  const sink: TelemetrySink = {record: (s) => void spans.push(s)}
  let reached = 0
  const app = fromAsync(async () => {
    reached++
    return {status: 200, headers: [], body: null}
  })
  const s = stack(app).push(authorization(() => POLICY))
  const service = (inbound ? s.push(serverSpan(sink, true)) : s.push(trace(sink))).service()
  const call = async (req: MeshRequest) => {
    const ctx = callContext(new VirtualClock(), {endpoint: {instance: 'api-v1-0', service: 'api', version: 'v1'} as Endpoint})
    try {
      return (await callService(service, req, ctx)).status
    } catch (error) {
      return error instanceof ProxyError ? `${error.status} ${error.flag}: ${error.message}` : String(error)
    }
  }
  return {spans, call, reached: () => reached}
}

describe('authorization layer', () => {
  test("allows by the rule that matches, and the caller's client span says which, with its principal", async () => {
    const h = harness(false)
    expect(await h.call(meshRequest({source: 'frontend', peer: {identity: 'frontend', principal: FRONTEND, authn: 'listener'}}))).toBe(200)
    expect(h.spans[0]).toMatchObject({
      kind: 'client',
      peerPrincipal: FRONTEND,
      peerAuthn: 'listener',
      decision: {authorization: 'allowed by allow rule 1 (principals cluster.local/ns/shop/sa/frontend)'},
    })
    expect(h.spans[0].requestAuthn).toBeUndefined()
  })

  test('a token and its claim decide; the span carries the request principal and the issuer that accepted it', async () => {
    const h = harness(false)
    const peer = {identity: 'ingress', principal: 'spiffe://cluster.local/ns/shop/sa/ingress', authn: 'listener' as const}
    const gold = meshRequest({source: 'ingress', peer, auth: {outcome: 'valid', principal: 'mesh/alice', claims: {plan: 'gold'}, rule: 'mesh'}})
    expect(await h.call(gold)).toBe(200)
    expect(h.spans[0]).toMatchObject({requestAuthn: 'valid', requestPrincipal: 'mesh/alice', authnRule: 'mesh'})
    expect(h.spans[0].decision?.authorization).toBe('allowed by allow rule 2 (requestPrincipals mesh/*, when request.auth.claims[plan] in gold)')

    const free = meshRequest({source: 'ingress', peer, auth: {outcome: 'valid', principal: 'mesh/bob', claims: {plan: 'free'}, rule: 'mesh'}})
    expect(await h.call(free)).toBe(
      '403 RBAC: RBAC: access denied: "ingress" may not make this call to "api": no allow rule matches: rule 1 wants principals cluster.local/ns/shop/sa/frontend (the caller is cluster.local/ns/shop/sa/ingress); rule 2 wants request.auth.claims[plan] in gold (it is "free") (policy.authorization)',
    )
    const none = meshRequest({source: 'ingress', peer, auth: {outcome: 'none'}})
    expect(await h.call(none)).toContain('rule 2 wants requestPrincipals mesh/* (the request has no valid token)')
    expect(h.reached()).toBe(1)
    expect(h.spans[2]).toMatchObject({status: 403, responseFlags: 'RBAC', requestAuthn: 'none'})
    expect(h.spans[2].decision?.authorization).toMatch(/^denied: no allow rule matches: /)
  })

  test('a call to a published address: the server span carries the decision, since no client span of ours covers it', async () => {
    const h = harness(true)
    expect(await h.call(meshRequest({source: 'unknown', path: '/admin/x', peer: {identity: 'unknown', authn: 'listener'}}))).toBe(
      '403 RBAC: RBAC: access denied: "unknown" may not make this call to "api": deny rule 1 (paths /admin/*) matches (policy.authorization)',
    )
    expect(h.spans[0]).toMatchObject({kind: 'server', status: 403, decision: {authorization: 'denied: deny rule 1 (paths /admin/*) matches'}})
    expect(h.spans[0].peerPrincipal).toBeUndefined()
    expect(h.reached()).toBe(0)
  })

  test('mesh trace --why shows who called, the token, and the rule; exports carry the same', async () => {
    const h = harness(false)
    const peer = {identity: 'frontend', principal: FRONTEND, authn: 'mtls' as const}
    await h.call(meshRequest({source: 'frontend', peer, auth: {outcome: 'none'}}))
    await h.call(meshRequest({source: 'ingress', peer: {identity: 'ingress', authn: 'listener'}, auth: {outcome: 'valid', principal: 'mesh/bob', claims: {plan: 'free'}, rule: 'mesh'}}))
    const first = renderWaterfall([h.spans[0]], {width: 200, colour: false, why: true})
    expect(first).toContain(`why: caller ${FRONTEND} (by its mTLS certificate); no token`)
    expect(first).toContain('why: allowed by allow rule 1 (principals cluster.local/ns/shop/sa/frontend)\n')
    const second = renderWaterfall([h.spans[1]], {width: 300, colour: false, why: true})
    expect(second).toContain('why: caller ingress has no principal (no certificate); token from issuer mesh: mesh/bob')
    expect(second).toContain('why: denied: no allow rule matches: rule 1 wants principals')
    expect(second).not.toContain('no instance chosen')
    expect(renderWaterfall([h.spans[0]], {width: 200, colour: false})).not.toContain('why:')

    const otlp = Object.fromEntries(toOtlpSpan(h.spans[0]).attributes.map((a) => [a.key, (a.value as {stringValue?: string}).stringValue]))
    expect(otlp).toMatchObject({'mesh.peer.principal': FRONTEND, 'mesh.peer.authn': 'mtls', 'mesh.request.authn': 'none'})
    expect(otlp['mesh.decision.authorization']).toBe('allowed by allow rule 1 (principals cluster.local/ns/shop/sa/frontend)')
    expect(toZipkinSpan(h.spans[1]).tags).toMatchObject({'mesh.request.principal': 'mesh/bob', 'mesh.request.authn_rule': 'mesh', 'mesh.request.authn': 'valid'})
  })

  test('aborted requests: an allowed one the client leaves mid-call is recorded as DC with its rule; a refused one never reaches the app', async () => {
    const spans: Span[] = []
    const sink: TelemetrySink = {record: (s) => void spans.push(s)}
    let reached = 0
    const app = fromAsync(
      (_req, ctx) =>
        new Promise((_resolve, reject) => {
          reached++
          ctx.signal.addEventListener('abort', () => reject(new Error('client went away')))
        }),
    )
    const service = stack(app).push(authorization(() => POLICY)).push(trace(sink)).service()
    const allowedCtx = callContext(new VirtualClock())
    const pending = callService(service, meshRequest({source: 'frontend', peer: {identity: 'frontend', principal: FRONTEND, authn: 'listener'}}), allowedCtx)
    allowedCtx.canceller.abort(new Error('client went away'))
    await expect(pending).rejects.toThrow('client went away')
    expect(spans[0]).toMatchObject({status: 0, responseFlags: 'DC', decision: {authorization: 'allowed by allow rule 1 (principals cluster.local/ns/shop/sa/frontend)'}})

    const refusedCtx = callContext(new VirtualClock())
    refusedCtx.canceller.abort(new Error('client went away'))
    await expect(callService(service, meshRequest({source: 'batch', peer: {identity: 'batch', authn: 'listener'}}), refusedCtx)).rejects.toMatchObject({status: 403, flag: 'RBAC'})
    expect(reached).toBe(1)
    expect(spans).toHaveLength(2)
  })
})
