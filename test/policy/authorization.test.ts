import {describe, expect, it} from 'vitest'
import {authorize, pathMatches} from '../../src/sim/proxy/policy/authorization.js'
import {mayEverAllow} from '../../src/sim/config/cross-checks.js'

describe('authorize (Istio AuthorizationPolicy semantics)', () => {
  const policy = {
    allow: [{from: ['frontend']}, {from: ['ingress'], methods: ['GET'], paths: ['/public/*', '/healthz']}],
    deny: [{paths: ['/admin*']}],
  }

  it('allows a request one allow rule matches in every field it names', () => {
    expect(authorize(policy, {source: 'frontend', method: 'POST', path: '/orders'})).toEqual({allowed: true})
    expect(authorize(policy, {source: 'ingress', method: 'GET', path: '/public/logo.png?v=2'})).toEqual({allowed: true})
    expect(authorize(policy, {source: 'ingress', method: 'GET', path: '/healthz'})).toEqual({allowed: true})
  })

  it('refuses what no allow rule matches: another caller, method or path', () => {
    for (const request of [
      {source: 'batch', method: 'GET', path: '/public/x'},
      {source: 'ingress', method: 'POST', path: '/public/x'},
      {source: 'ingress', method: 'GET', path: '/private'},
      {source: 'ingress', method: 'GET', path: '/healthz/deep'},
    ]) {
      expect(authorize(policy, request), JSON.stringify(request)).toEqual({allowed: false, reason: 'no allow rule matches'})
    }
  })

  it('checks deny rules first: a deny match refuses even an allowed caller, and names the rule', () => {
    expect(authorize(policy, {source: 'frontend', method: 'GET', path: '/admin/users'})).toEqual({allowed: false, reason: 'deny rule 1 (/admin*) matches'})
  })

  it('allows everything not denied when there are no allow rules; an empty allow list allows nothing', () => {
    expect(authorize({deny: [{from: ['batch']}]}, {source: 'frontend', method: 'GET', path: '/'})).toEqual({allowed: true})
    expect(authorize({deny: [{from: ['batch']}]}, {source: 'batch', method: 'GET', path: '/'}).allowed).toBe(false)
    expect(authorize({allow: []}, {source: 'frontend'})).toEqual({allowed: false, reason: 'allow lists no rule, so nothing is allowed'})
    expect(authorize({allow: [{}]}, {source: 'anyone'})).toEqual({allowed: true})
  })

  it('matches a TCP connection (no method or path) only by rules that name neither', () => {
    expect(authorize({allow: [{from: ['app']}]}, {source: 'app'}).allowed).toBe(true)
    expect(authorize({allow: [{from: ['app'], methods: ['GET']}]}, {source: 'app'}).allowed).toBe(false)
    expect(authorize({deny: [{paths: ['*']}]}, {source: 'app'}).allowed).toBe(true)
  })

  it("matches Istio's path forms: exact, prefix, suffix, any", () => {
    expect(pathMatches('/items', '/items')).toBe(true)
    expect(pathMatches('/items', '/items/1')).toBe(false)
    expect(pathMatches('/items/*', '/items/1')).toBe(true)
    expect(pathMatches('/items/*', '/items')).toBe(false)
    expect(pathMatches('*.json', '/a/b.json')).toBe(true)
    expect(pathMatches('*', '/anything')).toBe(true)
  })

  it('tells whether a caller could ever be allowed (for mesh validate)', () => {
    expect(mayEverAllow(policy, 'frontend')).toBe(true)
    expect(mayEverAllow(policy, 'ingress')).toBe(true)
    expect(mayEverAllow(policy, 'batch')).toBe(false)
    expect(mayEverAllow({deny: [{from: ['batch']}]}, 'batch')).toBe(false)
    expect(mayEverAllow({deny: [{from: ['batch'], methods: ['DELETE']}]}, 'batch')).toBe(true)
  })
})
