// requestAuthentication in mesh.yaml: Istio's jwtRules checked when the file is read — a key
// set that is no JSON or has no usable key, a jwksUri file that cannot be read — each an
// error at its line; and the lint that says a request with no token still passes.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {parsed, problems, yaml} from './helpers.js'

const EC_KEY = {kty: 'EC', crv: 'P-256', x: 'F9gip3S84NJupHkpAViYpS3j9eNU6r40nRcNAUhNuRU', y: 'IAhuMAPCI3m7o7sw3Gy_3er7IStYifzywRB7gLAMq7w', kid: 'k1'}

const withRules = (...rules: string[]) =>
  yaml('name: shop', 'services:', '  orders:', '    simulate: {}', '    policy:', '      authorization: {allow: [{methods: [GET]}]}', '      requestAuthentication:', '        jwtRules:', ...rules.map((r) => `          - ${r}`))

describe('jwtRules', () => {
  test('inline JWKS as JSON text or as a mapping, defaults as Istio\'s', () => {
    const config = parsed(withRules(`{issuer: https://idp.example, audiences: [shop], jwks: '${JSON.stringify({keys: [EC_KEY]})}'}`, `{issuer: other, jwks: {keys: [${JSON.stringify(EC_KEY)}]}, fromParams: [jwt], outputClaimToHeaders: [{header: x-plan, claim: plan}]}`))
    expect(config.services[0].policy.requestAuthentication?.jwtRules).toEqual([
      {issuer: 'https://idp.example', forwardOriginalToken: false, audiences: ['shop'], jwks: {keys: [EC_KEY]}},
      {issuer: 'other', forwardOriginalToken: false, jwks: {keys: [EC_KEY]}, fromParams: ['jwt'], outputClaimToHeaders: [{header: 'x-plan', claim: 'plan'}]},
    ])
  })

  test.each([
    ['a JWKS that is no JSON', `{issuer: a, jwks: '{"keys": ['}`, /jwtRules\[0\]\.jwks: the JWKS is not JSON/],
    ['a JWKS with no usable key', `{issuer: a, jwks: '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'}`, /jwtRules\[0\]\.jwks: the JWKS has no usable key: .*kty "oct"/],
    ['no key source', '{issuer: a}', /jwtRules\[0\]: missing jwks or jwksUri/],
    ['two key sources', `{issuer: a, jwks: '${JSON.stringify({keys: [EC_KEY]})}', jwksUri: 'http://auth/jwks'}`, /jwtRules\[0\]\.jwksUri: a jwtRule takes one key source/],
    ['a key source for the mesh\'s own issuer', `{issuer: mesh, jwksUri: 'http://auth/jwks'}`, /issuer: mesh is the mesh's own issuer/],
    ['a missing jwksUri file', '{issuer: a, jwksUri: keys/missing.json}', /jwtRules\[0\]\.jwksUri: cannot read the JWKS file \/work\/demo\/keys\/missing.json: no such file/],
    ['one issuer twice', '{issuer: mesh}', /jwtRules\[1\]\.issuer: issuer "mesh" has a jwtRule already/],
  ])('%s is an error at its line', (_, rule, error) => {
    const rules = _ === 'one issuer twice' ? [rule, rule] : [rule]
    const found = problems(withRules(...rules))
    expect(found.join('\n')).toMatch(error)
    expect(found.some((p) => /^mesh\.yaml:\d+:\d+ /.test(p))).toBe(true)
  })

  test('a jwksUri file is read and checked when the file is', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jwks-'))
    const good = path.join(dir, 'good.json')
    const bad = path.join(dir, 'bad.json')
    writeFileSync(good, JSON.stringify({keys: [EC_KEY]}))
    writeFileSync(bad, 'not json')
    expect(problems(withRules(`{issuer: a, jwksUri: ${bad}}`)).join('\n')).toMatch(`jwtRules[0].jwksUri: the JWKS in ${bad} is not JSON`)
    expect(parsed(withRules(`{issuer: a, jwksUri: ${good}}`)).services[0].policy.requestAuthentication?.jwtRules[0].jwksUri).toBe(good)
  })

  test('a protocol: tcp service takes none (a connection has no token)', () => {
    const source = yaml('name: shop', 'services:', '  db:', '    command: sleep 100', '    protocol: tcp', '    policy:', '      requestAuthentication: {jwtRules: [{issuer: mesh}]}')
    expect(problems(source).join('\n')).toMatch(/policy\.requestAuthentication acts on HTTP requests/)
  })

  test('the ingress takes jwtRules too', () => {
    const config = parsed(yaml('name: shop', 'ingress:', '  port: 0', '  routes: [{prefix: /, service: web}]', '  requestAuthentication: {jwtRules: [{issuer: mesh, audiences: [shop]}]}', 'services:', '  web:', '    simulate: {}'))
    expect(config.ingress?.requestAuthentication).toEqual({jwtRules: [{issuer: 'mesh', forwardOriginalToken: false, audiences: ['shop']}]})
  })
})

describe('a standing --jwks-unavailable fault (faults.inject)', () => {
  const withFault = (target: string) =>
    withRules(`{issuer: a, jwksUri: 'http://orders/jwks'}`).replace('services:\n', `faults:\n  inject: [{service: ${target}, jwksUnavailable: true}]\nservices:\n`)

  test('on a service that fetches a key set: taken', () => {
    expect(parsed(withFault('orders')).faults.inject).toEqual([{service: 'orders', kind: 'jwks-unavailable'}])
  })

  test('on one that fetches none, or on an ingress there is not: an error at the entry, as it would never act', () => {
    const source = withFault('orders').replace("jwksUri: 'http://orders/jwks'", "jwks: '" + JSON.stringify({keys: [EC_KEY]}) + "'")
    expect(problems(source).join('\n')).toMatch(/faults\.inject\[0\]\.jwksUnavailable: "orders" fetches no key set/)
    expect(problems(withFault('ingress')).join('\n')).toMatch(/faults\.inject\[0\]\.jwksUnavailable: "ingress" fetches no key set/)
  })
})

describe('the lint: a request with no token passes', () => {
  test('jwtRules and no authorization rule needing a token: warned, at the rules', () => {
    const warnings = problems(withRules('{issuer: mesh}'))
    expect(warnings).toEqual([expect.stringMatching(/^mesh\.yaml:8:\d+ services\.orders\.policy\.requestAuthentication: warning: jwtRules refuse a bad token but let a request with no token through/)])
  })

  test.each([
    ['allow: requestPrincipals', '{allow: [{requestPrincipals: ["*"]}]}'],
    ['allow: a when on a claim', '{allow: [{when: [{key: "request.auth.claims[plan]", values: [gold]}]}]}'],
    ['deny: notRequestPrincipals', '{deny: [{notRequestPrincipals: ["*"]}]}'],
  ])('an authorization rule that needs a token (%s): no warning', (_, authz) => {
    const source = withRules('{issuer: mesh}').replace('authorization: {allow: [{methods: [GET]}]}', `authorization: ${authz}`)
    expect(problems(source)).toEqual([])
  })

  test('at the ingress: names the routed services that take calls without a token', () => {
    const warnings = problems(yaml('name: shop', 'ingress:', '  port: 0', '  routes: [{prefix: /, service: web}]', '  requestAuthentication: {jwtRules: [{issuer: mesh}]}', 'services:', '  web:', '    simulate: {}'))
    expect(warnings).toEqual([expect.stringMatching(/ingress\.requestAuthentication: warning: the ingress's jwtRules .* "web" has no authorization rule that needs one/)])
  })
})
