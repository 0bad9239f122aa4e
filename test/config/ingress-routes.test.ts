import {describe, expect, it} from 'vitest'
import {describeRoute, matchRoute, rewritePath} from '../../src/sim/config/ingress-routes.js'
import {parsed, yaml} from './helpers.js'

describe('ingress routes', () => {
  const routes = [
    {prefix: '/', service: 'web'},
    {prefix: '/api', service: 'api', rewrite: '/'},
    {prefix: '/api/v2', service: 'api2', rewrite: '/v2'},
  ]

  it('takes the longest matching prefix', () => {
    expect(matchRoute(routes, '/api/items')?.service).toBe('api')
    expect(matchRoute(routes, '/api/v2/items')?.service).toBe('api2')
    expect(matchRoute(routes, '/about')?.service).toBe('web')
    expect(matchRoute([{prefix: '/api', service: 'api'}], '/other')).toBeUndefined()
  })

  it('replaces the matched prefix with rewrite, without leaving a double slash', () => {
    expect(rewritePath(routes[1], '/api/items')).toBe('/items')
    expect(rewritePath(routes[1], '/api')).toBe('/')
    expect(rewritePath(routes[1], '/api?q=1')).toBe('/?q=1')
    expect(rewritePath(routes[2], '/api/v2/items')).toBe('/v2/items')
    expect(rewritePath({prefix: '/old/', service: 's', rewrite: '/new/'}, '/old/x')).toBe('/new/x')
    expect(rewritePath(routes[0], '/about')).toBe('/about')
  })

  it('reads rewrite from mesh.yaml and names it when listing routes', () => {
    const config = parsed(yaml('name: x', 'ingress: {port: 0, routes: [{prefix: /api, service: api, rewrite: /}]}', 'services:', '  api: {command: node a.js}'))
    expect(config.ingress!.routes).toEqual([{prefix: '/api', service: 'api', rewrite: '/'}])
    expect(describeRoute(config.ingress!.routes[0])).toBe('/api → api (rewrite /)')
  })
})
