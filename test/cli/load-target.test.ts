// Where `mesh load TARGET` sends: a URL as given, `ingress`, or a service through the
// ingress route that reaches it — and an error that names the routes when none does.
import {describe, expect, test} from 'vitest'
import {isUrlTarget, meshTarget, parseHeaders, urlTarget} from '../../src/cli/load-target.js'
import type {MeshStatus} from '../../src/sim/control/status.js'
import {MeshError} from '../../src/sim/errors.js'

const status = (ingress?: MeshStatus['ingress']): MeshStatus => ({
  name: 'shop',
  configFile: '/tmp/mesh.yaml',
  phase: 'running',
  daemonPid: 1,
  controlUrl: 'http://127.0.0.1:1',
  ingress,
  startedAt: new Date(0).toISOString(),
  services: ['frontend', 'api', 'api-admin', 'catalog'].map((name) => ({name, dependsOn: [], versions: [], panic: false, faults: [], instances: []})),
})
const shop = status({
  url: 'http://127.0.0.1:8000',
  routes: [
    {prefix: '/', service: 'frontend'},
    {prefix: '/api', service: 'api'},
    {prefix: '/api/admin', service: 'api-admin'},
  ],
})

const thrown = (fn: () => unknown): MeshError => {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(MeshError)
    return error as MeshError
  }
  throw new Error('expected an error')
}

describe('isUrlTarget', () => {
  test.each([
    ['http://127.0.0.1:8000/', true],
    ['HTTP://localhost/x', true],
    ['localhost:8000', true],
    ['127.0.0.1:8000/items', true],
    ['[::1]:8000', true],
    ['frontend', false],
    ['ingress', false],
    ['api-admin', false],
  ])('%s → %s', (target, expected) => expect(isUrlTarget(target)).toBe(expected))
})

describe('urlTarget', () => {
  test('splits the origin from the path and query; --path wins', () => {
    expect(urlTarget('http://127.0.0.1:8000/items?page=2')).toEqual({origin: 'http://127.0.0.1:8000', path: '/items?page=2', via: 'url'})
    expect(urlTarget('http://127.0.0.1:8000')).toEqual({origin: 'http://127.0.0.1:8000', path: '/', via: 'url'})
    expect(urlTarget('localhost:9000', '/healthz')).toEqual({origin: 'http://localhost:9000', path: '/healthz', via: 'url'})
  })

  test('https and garbage are bad input (exit 2), with what to do', () => {
    expect(thrown(() => urlTarget('https://example.com')).message).toMatch(/plain HTTP only.*https/)
    const bad = thrown(() => urlTarget('http://exa mple:80'))
    expect(bad.code).toBe('MESH_BAD_FLAG')
    expect(bad.hints.join(' ')).toMatch(/service name/)
    expect(thrown(() => urlTarget('http://127.0.0.1:1', 'items')).message).toMatch(/--path must start with \//)
  })
})

describe('meshTarget', () => {
  test('with ingress.tls.redirect it is the HTTPS ingress (the HTTP one answers 308), trusting the mesh CA; without, the HTTP one', () => {
    const both = {...shop.ingress!, httpsUrl: 'https://localhost:8443'}
    expect(meshTarget('api', status({...both, redirect: true}))).toEqual({origin: 'https://localhost:8443', caFile: '/tmp/.mesh/ca/ca.crt', path: '/api', via: 'service'})
    expect(meshTarget('ingress', status({...both, redirect: true}))).toMatchObject({origin: 'https://localhost:8443', caFile: '/tmp/.mesh/ca/ca.crt'})
    expect(meshTarget('api', status(both))).toEqual({origin: 'http://127.0.0.1:8000', path: '/api', via: 'service'})
  })

  test('`ingress` is the ingress URL, at --path or /', () => {
    expect(meshTarget('ingress', shop)).toEqual({origin: 'http://127.0.0.1:8000', path: '/', via: 'ingress'})
    expect(meshTarget('ingress', shop, '/api/x')).toEqual({origin: 'http://127.0.0.1:8000', path: '/api/x', via: 'ingress'})
  })

  test('a service is reached through its ingress route prefix', () => {
    expect(meshTarget('frontend', shop)).toEqual({origin: 'http://127.0.0.1:8000', path: '/', via: 'service'})
    expect(meshTarget('api', shop)).toMatchObject({path: '/api'})
    expect(meshTarget('api-admin', shop, '/api/admin/users')).toMatchObject({path: '/api/admin/users'})
  })

  test('a --path that the ingress would send to another service is refused, naming where it goes', () => {
    const e = thrown(() => meshTarget('api', shop, '/api/admin/users'))
    expect(e.code).toBe('MESH_BAD_FLAG')
    expect(e.message).toBe('path /api/admin/users does not reach "api" through the ingress: it goes to "api-admin".')
  })

  test('a service the ingress does not route to is an error listing the routes', () => {
    const e = thrown(() => meshTarget('catalog', shop))
    expect(e.code).toBe('MESH_BAD_FLAG')
    expect(e.message).toBe('the ingress does not route to "catalog".')
    expect(e.hints[0]).toBe('Ingress routes: / → frontend, /api → api, /api/admin → api-admin')
  })

  test('an unknown service, or a mesh without an ingress, says so', () => {
    const unknown = thrown(() => meshTarget('payments', shop))
    expect(unknown.code).toBe('MESH_SERVICE_NOT_FOUND')
    expect(unknown.hints[0]).toBe('Known services: frontend, api, api-admin, catalog')
    const none = thrown(() => meshTarget('frontend', status(undefined)))
    expect(none.message).toMatch(/has no ingress/)
    expect(thrown(() => meshTarget('ingress', status(undefined))).message).toMatch(/has no ingress/)
  })
})

describe('parseHeaders', () => {
  test('name=value and curl-style name: value; names lowercased; repeats joined', () => {
    expect(parseHeaders(['X-User=alice', 'accept: application/json', 'x-user=bob', 'x-empty='])).toEqual({
      'x-user': 'alice, bob',
      accept: 'application/json',
      'x-empty': '',
    })
    expect(parseHeaders(['authorization=Bearer a=b'])).toEqual({authorization: 'Bearer a=b'})
    expect(parseHeaders()).toEqual({})
  })

  test('no name is bad input', () => {
    expect(thrown(() => parseHeaders(['novalue'])).code).toBe('MESH_BAD_FLAG')
    expect(thrown(() => parseHeaders(['=x'])).code).toBe('MESH_BAD_FLAG')
    expect(thrown(() => parseHeaders(['bad name=x'])).code).toBe('MESH_BAD_FLAG')
  })
})
