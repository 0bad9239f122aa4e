import {describe, expect, test} from 'vitest'
import {callGraph, ingressPathTo, startOrder, withDependencies} from '../../src/sim/config/call-graph.js'
import {parsed, yaml} from './helpers.js'

// web → api → (db, recs by a simulated call); admin is routed directly; lonely nobody calls.
const mesh = parsed(
  yaml(
    'name: g',
    'ingress: {port: 0, routes: [{prefix: /, service: web}, {prefix: /admin, service: admin}]}',
    'services:',
    '  web: {dependsOn: [api], simulate: {}}',
    '  api: {dependsOn: [db], simulate: {calls: [{service: recs}]}}',
    '  db: {simulate: {}}',
    '  recs: {dependsOn: [db], simulate: {}}',
    '  admin: {dependsOn: [recs], simulate: {}}',
    '  lonely: {simulate: {}}',
  ),
)

describe('call graph', () => {
  test('edges are dependsOn plus the calls simulated services make', () => {
    expect(callGraph(mesh).get('api')).toEqual(['db', 'recs'])
    expect(callGraph(mesh).get('db')).toEqual([])
  })

  test('a service the ingress routes to is reached on its own route', () => {
    expect(ingressPathTo(mesh, 'admin')).toEqual({route: {prefix: '/admin', service: 'admin'}, services: ['admin']})
    expect(ingressPathTo(mesh, 'web')?.services).toEqual(['web'])
  })

  test('a service behind others is reached on the route with the fewest hops to it', () => {
    // recs is behind web → api, and nearer behind admin.
    expect(ingressPathTo(mesh, 'recs')).toEqual({route: {prefix: '/admin', service: 'admin'}, services: ['admin', 'recs']})
    // db is as far behind web → api as behind admin → recs: the route first in the file wins.
    expect(ingressPathTo(mesh, 'db')).toEqual({route: {prefix: '/', service: 'web'}, services: ['web', 'api', 'db']})
  })

  test('a service nothing routed reaches has no path', () => {
    expect(ingressPathTo(mesh, 'lonely')).toBeUndefined()
    expect(ingressPathTo(mesh, 'nope')).toBeUndefined()
  })
})

describe('start order', () => {
  test('each service after what it calls (dependsOn and simulated calls), in file order within a group', () => {
    expect(startOrder(mesh)).toEqual([['db', 'lonely'], ['recs'], ['api', 'admin'], ['web']])
  })

  test('a cycle cannot be ordered: it starts last, together', () => {
    const cyclic = {...mesh, services: [...mesh.services.filter((s) => s.name === 'db'), {...mesh.services.find((s) => s.name === 'web')!, dependsOn: ['api']}, {...mesh.services.find((s) => s.name === 'api')!, dependsOn: ['web'], versions: [{name: 'v1', replicas: 1, env: {}, workload: {kind: 'command' as const, command: 'x', cwd: '/'}}]}]}
    expect(startOrder(cyclic)).toEqual([['db'], ['web', 'api']])
  })
})

describe('withDependencies', () => {
  test('the services named and all they call, depth-first in call order', () => {
    expect([...withDependencies(mesh, ['web'])]).toEqual(['web', 'api', 'db', 'recs'])
    expect([...withDependencies(mesh, ['admin', 'api'])][0]).toBe('admin')
  })

  test('a 20,000-deep dependency chain, without overflowing the call stack', () => {
    const lines = ['name: deep', 'services:']
    for (let i = 0; i < 20_000; i++) lines.push(`  s${i}: {simulate: {}${i + 1 < 20_000 ? `, dependsOn: [s${i + 1}]` : ''}}`)
    const chain = withDependencies(parsed(yaml(...lines)), ['s0'])
    expect(chain.size).toBe(20_000)
    expect([...chain].at(-1)).toBe('s19999')
  })
})
