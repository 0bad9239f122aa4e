// Authorization on what request authentication made of the token (#21.8), end to end: real
// tokens from the mesh's dev issuer (`mesh token`), checked by a jwtRule, then judged by
// requestPrincipals and `when` conditions on claims; `mesh trace --why` says which decided.
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {downMesh, eventually, get, json, mesh, upMesh} from '../helpers/mesh.js'

const REFUSED_ID = '6df92f3577b34da6a3ce929d0e0e4738'
const ALLOWED_ID = '7ef92f3577b34da6a3ce929d0e0e4739'
const traced = (id: string) => ({traceparent: `00-${id}-00f067aa0ba902b7-01`})

describe('authorization on request principals and claims', () => {
  let dir: string
  let ingress: string
  const tokens: Record<string, string> = {}

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(
      (port) => `
name: jwtz
ingress: {port: ${port}, routes: [{prefix: /, service: admin}]}
services:
  admin:
    command: node fixtures/echo-server.js
    policy:
      requestAuthentication: {jwtRules: [{issuer: mesh}]}
      authorization:
        allow:
          - requestPrincipals: ["*"]
            paths: [/public/*]
          - requestPrincipals: [mesh/*]
            when: [{key: "request.auth.claims[groups]", values: [admin]}]
        deny:
          - when: [{key: "request.auth.claims[plan]", values: [banned]}]
`,
    ))
    const sign = async (name: string, args: string[]) => {
      const r = await mesh(dir, ['token', ...args])
      expect(r.exitCode, r.stderr).toBe(0)
      tokens[name] = `Bearer ${r.stdout.trim()}`
    }
    await Promise.all([
      sign('alice', ['--sub', 'alice']),
      sign('admin', ['--sub', 'root', '--claim', 'groups=dev', '--claim', 'groups=admin']),
      sign('dev', ['--sub', 'bob', '--claim', 'groups=dev']),
      sign('banned', ['--sub', 'eve', '--claim', 'groups=admin', '--claim', 'plan=banned']),
    ])
  })

  afterAll(() => downMesh(dir))

  test('no token passes authentication and is refused by a requestPrincipals: ["*"] rule; any valid token is admitted', async () => {
    const none = await get(`${ingress}/public/x`, traced(REFUSED_ID))
    expect(none.status).toBe(403)
    expect(none.headers['x-mesh-response-flags']).toBe('RBAC')
    expect(none.text).toContain('rule 1 wants requestPrincipals * (the request has no valid token)')
    expect((await get(`${ingress}/public/x`, {authorization: tokens.alice, ...traced(ALLOWED_ID)})).status).toBe(200)
  })

  test('a when on a list claim decides as written; a deny rule on a claim wins over the allow', async () => {
    expect((await get(`${ingress}/admin`, {authorization: tokens.admin})).status).toBe(200)
    const dev = await get(`${ingress}/admin`, {authorization: tokens.dev})
    expect(dev.status).toBe(403)
    expect(dev.text).toContain('rule 2 wants request.auth.claims[groups] in admin (it is "dev")')
    const banned = await get(`${ingress}/admin`, {authorization: tokens.banned})
    expect(banned.status).toBe(403)
    expect(banned.text).toContain('deny rule 1 (when request.auth.claims[plan] in banned) matches')
  })

  test('mesh trace --why: no token or the issuer and principal, and the rule that decided; the span carries them', async () => {
    const why = async (id: string, word: string) =>
      eventually(async () => {
        const r = await mesh(dir, ['trace', id, '--why', '--width', '400'])
        return r.exitCode === 0 && r.stdout.includes(word) ? r.stdout : undefined
      })
    const refused = await why(REFUSED_ID, 'denied')
    expect(refused).toContain('why: caller spiffe://cluster.local/ns/jwtz/sa/ingress (by its sidecar listener); no token')
    expect(refused).toContain('why: denied: no allow rule matches: rule 1 wants requestPrincipals *')
    const allowed = await why(ALLOWED_ID, 'allowed')
    expect(allowed).toContain('token from issuer mesh: mesh/alice')
    expect(allowed).toContain('why: allowed by allow rule 1 (requestPrincipals *, paths /public/*)')
    const [client] = json<Span[]>(await mesh(dir, ['trace', ALLOWED_ID, '--json'])).filter((s) => s.kind === 'client')
    expect(client).toMatchObject({requestAuthn: 'valid', requestPrincipal: 'mesh/alice', authnRule: 'mesh', peerAuthn: 'listener'})
  })
})
