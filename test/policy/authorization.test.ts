import {describe, expect, it} from 'vitest'
import {authorize, describeRule, valueMatches, type AuthorizationRequest} from '../../src/sim/proxy/policy/authorization.js'
import {parseConditionKey} from '../../src/sim/proxy/policy/authorization-conditions.js'
import {mayEverAllow} from '../../src/sim/config/cross-checks.js'
import type {AuthorizationConfig, AuthorizationRule} from '../../src/sim/config/types.js'
import type {RequestAuth} from '../../src/sim/proxy/stack.js'

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend'
const BATCH = 'spiffe://cluster.local/ns/shop/sa/batch'

/** A request from `identity`'s sidecar (its principal in mesh "shop"), GET / unless told otherwise. */
function req(identity: string, more: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
  const principal = identity === 'unknown' ? undefined : `spiffe://cluster.local/ns/shop/sa/${identity}`
  return {peer: {identity, principal}, method: 'GET', path: '/', headers: {}, ...more}
}

const token = (principal: string, claims: Record<string, unknown> = {}): RequestAuth => ({outcome: 'valid', principal, claims, rule: 'mesh'})
const NO_TOKEN: RequestAuth = {outcome: 'none'}
const allowed = (config: AuthorizationConfig, request: AuthorizationRequest) => authorize(config, request).allowed
/** Whether a policy with this one allow rule admits the request. */
const admits = (rule: AuthorizationRule, request: AuthorizationRequest) => allowed({allow: [rule]}, request)

describe('authorize (Istio AuthorizationPolicy semantics)', () => {
  const policy = {
    allow: [{from: ['frontend']}, {from: ['ingress'], methods: ['GET'], paths: ['/public/*', '/healthz']}],
    deny: [{paths: ['/admin*']}],
  }

  it('allows a request one allow rule matches in every field it names, and says which rule', () => {
    expect(authorize(policy, req('frontend', {method: 'POST', path: '/orders'}))).toEqual({allowed: true, rule: 'allow rule 1 (from frontend)'})
    expect(authorize(policy, req('ingress', {path: '/public/logo.png?v=2'}))).toEqual({allowed: true, rule: 'allow rule 2 (from ingress, methods GET, paths /public/*|/healthz)'})
    expect(allowed(policy, req('ingress', {path: '/healthz'}))).toBe(true)
  })

  it('refuses what no allow rule matches, saying why each rule did not', () => {
    const verdict = authorize(policy, req('batch', {path: '/public/x'}))
    expect(verdict).toEqual({allowed: false, reason: 'no allow rule matches: rule 1 wants from frontend (the caller is batch); rule 2 wants from ingress (the caller is batch)'})
    expect(authorize(policy, req('ingress', {method: 'POST', path: '/public/x'}))).toMatchObject({reason: expect.stringContaining('rule 2 wants methods GET (the method is POST)')})
    expect(authorize(policy, req('ingress', {path: '/private?x=1'}))).toMatchObject({reason: expect.stringContaining('rule 2 wants paths /public/*|/healthz (the path is /private)')})
    expect(allowed(policy, req('ingress', {path: '/healthz/deep'}))).toBe(false)
  })

  it('checks deny rules first: a deny match refuses even an allowed caller, and names the rule', () => {
    expect(authorize(policy, req('frontend', {path: '/admin/users'}))).toEqual({allowed: false, reason: 'deny rule 1 (paths /admin*) matches'})
  })

  it('allows everything not denied when there are no allow rules; an empty allow list allows nothing', () => {
    expect(authorize({deny: [{from: ['batch']}]}, req('frontend'))).toEqual({allowed: true})
    expect(allowed({deny: [{from: ['batch']}]}, req('batch'))).toBe(false)
    expect(authorize({allow: []}, req('frontend'))).toEqual({allowed: false, reason: 'allow lists no rule, so nothing is allowed'})
    expect(allowed({allow: [{}]}, req('anyone'))).toBe(true)
  })

  it('explains at most four rules in a refusal (it travels in a header)', () => {
    const many = {allow: ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => ({from: [s]}))}
    const verdict = authorize(many, req('z'))
    expect(verdict.allowed).toBe(false)
    expect(!verdict.allowed && verdict.reason).toMatch(/rule 4 wants from d \(the caller is z\); and 2 more$/)
  })

  describe('principals', () => {
    it('match the caller SPIFFE ID written with or without spiffe://', () => {
      for (const p of ['cluster.local/ns/shop/sa/frontend', FRONTEND]) {
        expect(admits({principals: [p]}, req('frontend')), p).toBe(true)
        expect(admits({principals: [p]}, req('batch')), p).toBe(false)
      }
    })

    it("take Istio's prefix, suffix and * forms; * needs a principal (a caller without one is refused)", () => {
      expect(admits({principals: ['cluster.local/ns/shop/*']}, req('batch'))).toBe(true)
      expect(admits({principals: ['spiffe://cluster.local/ns/shop/*']}, req('batch'))).toBe(true)
      expect(admits({principals: ['cluster.local/ns/other/*']}, req('batch'))).toBe(false)
      expect(admits({principals: ['*/sa/frontend']}, req('frontend'))).toBe(true)
      expect(admits({principals: ['*/sa/frontend']}, req('batch'))).toBe(false)
      expect(admits({principals: ['*']}, req('batch'))).toBe(true)
      expect(admits({principals: ['*']}, req('unknown'))).toBe(false)
      expect(authorize({allow: [{principals: ['*']}]}, req('unknown'))).toEqual({
        allowed: false,
        reason: 'no allow rule matches: rule 1 wants principals * (the caller has no principal)',
      })
    })

    it('notPrincipals: matches every caller but those, including one with no principal', () => {
      expect(admits({notPrincipals: [FRONTEND]}, req('frontend'))).toBe(false)
      expect(admits({notPrincipals: ['cluster.local/ns/shop/sa/frontend']}, req('batch'))).toBe(true)
      expect(admits({notPrincipals: ['*']}, req('unknown'))).toBe(true)
      // Istio's way to refuse plaintext callers: deny whoever has no principal.
      expect(authorize({deny: [{notPrincipals: ['*']}]}, req('unknown'))).toEqual({allowed: false, reason: 'deny rule 1 (notPrincipals *) matches: the caller has no principal'})
      expect(allowed({deny: [{notPrincipals: ['*']}]}, req('batch'))).toBe(true)
    })

    it('from: [frontend] and principals: [its SPIFFE ID] admit and refuse the same callers', () => {
      for (const caller of ['frontend', 'batch', 'ingress', 'unknown']) {
        expect(admits({from: ['frontend']}, req(caller)), caller).toBe(admits({principals: ['cluster.local/ns/shop/sa/frontend']}, req(caller)))
      }
    })
  })

  describe('requestPrincipals', () => {
    it('match a valid token <iss>/<sub>; * is any valid token; no token or a TCP connection matches none', () => {
      expect(admits({requestPrincipals: ['mesh/alice']}, req('ingress', {auth: token('mesh/alice')}))).toBe(true)
      expect(admits({requestPrincipals: ['mesh/alice']}, req('ingress', {auth: token('mesh/bob')}))).toBe(false)
      expect(admits({requestPrincipals: ['mesh/*']}, req('ingress', {auth: token('mesh/bob')}))).toBe(true)
      expect(admits({requestPrincipals: ['*/bob']}, req('ingress', {auth: token('idp.example.com/bob')}))).toBe(true)
      expect(admits({requestPrincipals: ['*']}, req('ingress', {auth: token('mesh/bob')}))).toBe(true)
      expect(admits({requestPrincipals: ['*']}, req('ingress', {auth: NO_TOKEN}))).toBe(false)
      expect(admits({requestPrincipals: ['*']}, req('ingress'))).toBe(false)
      expect(admits({requestPrincipals: ['*']}, {peer: {identity: 'app'}, auth: token('mesh/bob')})).toBe(false)
      expect(authorize({allow: [{requestPrincipals: ['*']}]}, req('ingress', {auth: NO_TOKEN}))).toEqual({
        allowed: false,
        reason: 'no allow rule matches: rule 1 wants requestPrincipals * (the request has no valid token)',
      })
    })

    it('notRequestPrincipals: ["*"] in a deny rule refuses a request without a token (Istio\'s "require a JWT")', () => {
      const requireToken = {deny: [{notRequestPrincipals: ['*']}]}
      expect(authorize(requireToken, req('ingress', {auth: NO_TOKEN}))).toEqual({
        allowed: false,
        reason: 'deny rule 1 (notRequestPrincipals *) matches: the request has no valid token',
      })
      expect(allowed(requireToken, req('ingress', {auth: token('mesh/alice')}))).toBe(true)
      expect(admits({notRequestPrincipals: ['mesh/alice']}, req('ingress', {auth: token('mesh/alice')}))).toBe(false)
      expect(admits({notRequestPrincipals: ['mesh/alice']}, req('ingress', {auth: token('mesh/bob')}))).toBe(true)
    })
  })

  describe('methods and paths', () => {
    it('notMethods and notPaths match everything but what they list', () => {
      expect(admits({notMethods: ['DELETE']}, req('a', {method: 'GET'}))).toBe(true)
      expect(admits({notMethods: ['DELETE']}, req('a', {method: 'DELETE'}))).toBe(false)
      expect(admits({notPaths: ['/admin/*']}, req('a', {path: '/items'}))).toBe(true)
      expect(admits({notPaths: ['/admin/*']}, req('a', {path: '/admin/x?y=1'}))).toBe(false)
      expect(authorize({allow: [{notPaths: ['/admin/*']}]}, req('a', {path: '/admin/x'}))).toMatchObject({reason: 'no allow rule matches: rule 1 refuses notPaths /admin/* (the path is /admin/x)'})
    })

    it("matches Istio's string forms: exact, prefix, suffix, any", () => {
      expect(valueMatches('/items', '/items')).toBe(true)
      expect(valueMatches('/items', '/items/1')).toBe(false)
      expect(valueMatches('/items/*', '/items/1')).toBe(true)
      expect(valueMatches('/items/*', '/items')).toBe(false)
      expect(valueMatches('*.json', '/a/b.json')).toBe(true)
      expect(valueMatches('*', '/anything')).toBe(true)
    })
  })

  describe('when', () => {
    const withClaims = (claims: Record<string, unknown>) => req('ingress', {auth: token('mesh/alice', claims)})

    it('a list claim matches when any element does; a string claim by its value', () => {
      const rule = {when: [{key: 'request.auth.claims[groups]', values: ['admin']}]}
      expect(admits(rule, withClaims({groups: ['dev', 'admin']}))).toBe(true)
      expect(admits(rule, withClaims({groups: ['dev']}))).toBe(false)
      expect(admits(rule, withClaims({groups: 'admin'}))).toBe(true)
      expect(admits(rule, withClaims({}))).toBe(false)
      expect(admits(rule, req('ingress', {auth: NO_TOKEN}))).toBe(false)
      expect(admits({when: [{key: 'request.auth.claims[admin]', values: ['true']}]}, withClaims({admin: true}))).toBe(true)
      expect(admits({when: [{key: 'request.auth.claims[level]', values: ['3']}]}, withClaims({level: 3}))).toBe(true)
    })

    it('nested claims: request.auth.claims[a][b]', () => {
      const rule = {when: [{key: 'request.auth.claims[realm_access][roles]', values: ['admin']}]}
      expect(admits(rule, withClaims({realm_access: {roles: ['user', 'admin']}}))).toBe(true)
      expect(admits(rule, withClaims({realm_access: {roles: ['user']}}))).toBe(false)
      expect(admits(rule, withClaims({realm_access: 'admin'}))).toBe(false)
      expect(admits(rule, withClaims({realm_access: {roles: {admin: true}}}))).toBe(false)
    })

    it('notValues: holds when no value is one of them, an absent attribute included; values and notValues both must hold', () => {
      const rule = {when: [{key: 'request.auth.claims[plan]', notValues: ['free']}]}
      expect(admits(rule, withClaims({plan: 'gold'}))).toBe(true)
      expect(admits(rule, withClaims({plan: 'free'}))).toBe(false)
      expect(admits(rule, withClaims({}))).toBe(true)
      const both = {when: [{key: 'request.auth.claims[groups]', values: ['team-*'], notValues: ['team-ops']}]}
      expect(admits(both, withClaims({groups: ['team-web']}))).toBe(true)
      expect(admits(both, withClaims({groups: ['team-web', 'team-ops']}))).toBe(false)
    })

    it('request.auth.principal, audiences and presenter read the valid token', () => {
      const r = withClaims({aud: ['shop', 'admin-api'], azp: 'web-client'})
      expect(admits({when: [{key: 'request.auth.principal', values: ['mesh/alice']}]}, r)).toBe(true)
      expect(admits({when: [{key: 'request.auth.principal', values: ['mesh/bob']}]}, r)).toBe(false)
      expect(admits({when: [{key: 'request.auth.audiences', values: ['admin-api']}]}, r)).toBe(true)
      expect(admits({when: [{key: 'request.auth.audiences', values: ['billing']}]}, r)).toBe(false)
      expect(admits({when: [{key: 'request.auth.audiences', values: ['shop']}]}, withClaims({aud: 'shop'}))).toBe(true)
      expect(admits({when: [{key: 'request.auth.presenter', values: ['web-*']}]}, r)).toBe(true)
      expect(admits({when: [{key: 'request.auth.principal', values: ['*']}]}, req('ingress', {auth: NO_TOKEN}))).toBe(false)
    })

    it('request.headers[name]: case-insensitive name, any of a repeated header, * for present', () => {
      const rule = {when: [{key: 'request.headers[X-Tenant]', values: ['acme', 'beta-*']}]}
      expect(admits(rule, req('a', {headers: {'x-tenant': 'acme'}}))).toBe(true)
      expect(admits(rule, req('a', {headers: {'x-tenant': ['zeta', 'beta-2']}}))).toBe(true)
      expect(admits(rule, req('a', {headers: {'x-tenant': 'zeta'}}))).toBe(false)
      expect(admits(rule, req('a', {headers: {}}))).toBe(false)
      expect(admits({when: [{key: 'request.headers[x-debug]', values: ['*']}]}, req('a', {headers: {'x-debug': '1'}}))).toBe(true)
      expect(admits({when: [{key: 'request.headers[x-debug]', notValues: ['*']}]}, req('a', {headers: {'x-debug': '1'}}))).toBe(false)
      expect(authorize({allow: [rule]}, req('a', {headers: {'x-tenant': 'zeta'}}))).toMatchObject({
        reason: 'no allow rule matches: rule 1 wants request.headers[X-Tenant] in acme|beta-* (it is "zeta")',
      })
    })

    it('source.principal and source.namespace read the caller SPIFFE ID, on a TCP connection too', () => {
      expect(admits({when: [{key: 'source.principal', values: ['cluster.local/ns/shop/sa/frontend']}]}, req('frontend'))).toBe(true)
      expect(admits({when: [{key: 'source.principal', values: ['cluster.local/ns/shop/sa/frontend']}]}, req('batch'))).toBe(false)
      expect(admits({when: [{key: 'source.namespace', values: ['shop']}]}, {peer: {identity: 'batch', principal: BATCH}})).toBe(true)
      expect(admits({when: [{key: 'source.namespace', values: ['other']}]}, req('batch'))).toBe(false)
      expect(admits({when: [{key: 'source.namespace', values: ['*']}]}, req('unknown'))).toBe(false)
    })

    it('a condition on the request does not hold on a TCP connection (Istio L4)', () => {
      expect(admits({when: [{key: 'request.headers[x-a]', notValues: ['b']}]}, {peer: {identity: 'app'}})).toBe(false)
      expect(allowed({deny: [{when: [{key: 'request.headers[x-a]', notValues: ['b']}]}]}, {peer: {identity: 'app'}})).toBe(true)
    })

    it('a refusal shows a bounded part of what the caller sent', () => {
      const groups = ['g1', 'g2', 'g3', 'g4', 'x'.repeat(100)]
      const verdict = authorize({allow: [{when: [{key: 'request.auth.claims[groups]', values: ['admin']}]}]}, withClaims({groups}))
      expect(verdict).toMatchObject({reason: 'no allow rule matches: rule 1 wants request.auth.claims[groups] in admin (it is "g1", "g2", "g3" and 2 more)'})
      const long = authorize({allow: [{when: [{key: 'request.headers[x-a]', values: ['1']}]}]}, req('a', {headers: {'x-a': 'y'.repeat(1000)}}))
      expect(!long.allowed && long.reason.length).toBeLessThan(200)
    })

    it('every condition must hold; a key this mesh does not parse never holds (fails closed)', () => {
      const rule = {when: [{key: 'request.headers[x-a]', values: ['1']}, {key: 'request.headers[x-b]', values: ['2']}]}
      expect(admits(rule, req('a', {headers: {'x-a': '1', 'x-b': '2'}}))).toBe(true)
      expect(admits(rule, req('a', {headers: {'x-a': '1', 'x-b': '3'}}))).toBe(false)
      expect(admits({when: [{key: 'source.ip', notValues: ['10.0.0.1']}]}, req('a'))).toBe(false)
    })
  })

  it('matches a TCP connection (no method or path) only by rules that ask for no HTTP field', () => {
    const tcp = {peer: {identity: 'app', principal: 'spiffe://cluster.local/ns/shop/sa/app'}}
    expect(allowed({allow: [{from: ['app']}]}, tcp)).toBe(true)
    expect(allowed({allow: [{principals: ['cluster.local/ns/shop/sa/app']}]}, tcp)).toBe(true)
    for (const field of [{methods: ['GET']}, {notMethods: ['GET']}, {paths: ['*']}, {notPaths: ['/x']}, {requestPrincipals: ['*']}, {notRequestPrincipals: ['*']}]) {
      expect(allowed({allow: [{from: ['app'], ...field}]}, tcp), JSON.stringify(field)).toBe(false)
      expect(allowed({deny: [field]}, tcp), JSON.stringify(field)).toBe(true)
    }
  })

  it('DENY before ALLOW whatever field decides', () => {
    const config = {
      allow: [{principals: ['*']}],
      deny: [{when: [{key: 'request.auth.claims[plan]', values: ['banned']}]}],
    }
    expect(authorize(config, req('frontend', {auth: token('mesh/x', {plan: 'banned'})}))).toEqual({
      allowed: false,
      reason: 'deny rule 1 (when request.auth.claims[plan] in banned) matches',
    })
    expect(allowed(config, req('frontend', {auth: token('mesh/x', {plan: 'gold'})}))).toBe(true)
  })

  it('describes a rule by every field it names', () => {
    expect(describeRule({notPrincipals: ['a'], requestPrincipals: ['i/s'], notMethods: ['GET'], notPaths: ['/x'], when: [{key: 'k', values: ['1'], notValues: ['2']}]})).toBe(
      'notPrincipals a, requestPrincipals i/s, notMethods GET, notPaths /x, when k in 1 and k not in 2',
    )
    expect(describeRule({})).toBe('every request')
  })

  it('tells whether a caller could ever be allowed (for mesh validate)', () => {
    expect(mayEverAllow(policy, 'frontend')).toBe(true)
    expect(mayEverAllow(policy, 'ingress')).toBe(true)
    expect(mayEverAllow(policy, 'batch')).toBe(false)
    expect(mayEverAllow({deny: [{from: ['batch']}]}, 'batch')).toBe(false)
    expect(mayEverAllow({deny: [{from: ['batch'], methods: ['DELETE']}]}, 'batch')).toBe(true)
    expect(mayEverAllow({deny: [{from: ['batch'], when: [{key: 'request.headers[x]', values: ['1']}]}]}, 'batch')).toBe(true)
  })
})

describe('parseConditionKey', () => {
  it("knows Istio's keys this mesh can judge", () => {
    expect(parseConditionKey('request.headers[User-Agent]')).toEqual({kind: 'header', name: 'user-agent'})
    expect(parseConditionKey('request.auth.claims[groups]')).toEqual({kind: 'claim', path: ['groups']})
    expect(parseConditionKey('request.auth.claims[a][b.c]')).toEqual({kind: 'claim', path: ['a', 'b.c']})
    expect(parseConditionKey('source.principal')).toEqual({kind: 'source.principal'})
  })

  it("refuses any other key, naming the keys; an Istio key it cannot judge says why", () => {
    expect(parseConditionKey('request.auth.claim[groups]')).toMatchObject({error: expect.stringContaining('"request.auth.claim[groups]" is not one of Istio\'s condition keys; the keys are request.headers[<name>]')})
    expect(parseConditionKey('request.headers.x-user')).toMatchObject({error: expect.stringContaining('write the name in brackets')})
    expect(parseConditionKey('request.auth.claims[]')).toMatchObject({error: expect.stringContaining('write the name in brackets')})
    expect(parseConditionKey('source.ip')).toMatchObject({error: expect.stringContaining("source.ip is Istio's, but not judged here (every caller of a local mesh is 127.0.0.1)")})
  })
})
