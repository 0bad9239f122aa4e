import {describe, expect, test} from 'vitest'
import {type Endpoint, Registry, type RegistryUpdate} from '../../src/sim/proxy/registry.js'
import {EndpointSet} from '../../src/sim/proxy/endpoint-set.js'

const ep = (instance: string, service = 'catalog'): Endpoint => ({
  instance,
  service,
  version: 'v1',
  host: '127.0.0.1',
  port: 1,
  inboundPort: 2,
  origin: 'http://127.0.0.1:1',
})

describe('registry services', () => {
  test('a service added later takes instances; one removed is unknown again (an instance of it is refused)', () => {
    const registry = new Registry(['catalog'])
    expect(() => registry.add(ep('search-v1-0', 'search'))).toThrow(/unknown service search/)
    registry.addService('search')
    registry.add(ep('search-v1-0', 'search'))
    expect(registry.services()).toEqual(['catalog', 'search'])
    expect(registry.endpoints('search')).toEqual([ep('search-v1-0', 'search')])
    registry.remove('search', 'search-v1-0')
    registry.removeService('search')
    expect(registry.has('search')).toBe(false)
    expect(() => registry.add(ep('search-v1-1', 'search'))).toThrow(/unknown service search/)
  })
})

describe('registry watch stream', () => {
  test('a watcher gets a reset with what is there, then adds and removes as they happen', () => {
    const registry = new Registry(['catalog', 'cart'])
    registry.add(ep('catalog-v1-0'))
    const seen: RegistryUpdate[] = []
    const unwatch = registry.watch('catalog', (u) => seen.push(u))
    registry.add(ep('catalog-v1-1'))
    registry.add(ep('cart-v1-0', 'cart'))
    registry.remove('catalog', 'catalog-v1-0')
    registry.remove('catalog', 'catalog-v1-0') // already gone: no update
    unwatch()
    registry.add(ep('catalog-v1-2'))
    expect(seen).toEqual([
      {kind: 'reset', endpoints: [ep('catalog-v1-0')]},
      {kind: 'add', endpoint: ep('catalog-v1-1')},
      {kind: 'remove', instance: 'catalog-v1-0'},
    ])
  })

  test('an endpoint set follows the registry, grouped by version', () => {
    const registry = new Registry(['catalog'])
    const set = new EndpointSet('catalog', registry, new Map([['v1', 100]]))
    expect(set.pickVersion()).toBeUndefined()
    registry.add(ep('a'))
    registry.add(ep('b'))
    registry.add({...ep('c'), version: 'v2'})
    expect(set.ofVersion('v1').map((e) => e.instance)).toEqual(['a', 'b'])
    expect(set.ofVersion('v2').map((e) => e.instance)).toEqual(['c'])
    registry.remove('catalog', 'b')
    expect(set.ofVersion('v1').map((e) => e.instance)).toEqual(['a'])
    // Re-adding an instance (after a restart) replaces it rather than duplicating it.
    registry.add(ep('a'))
    expect(set.size).toBe(2)
  })
})

describe('version weights', () => {
  test('90/10 weights send exactly 9 of every 10 requests to v1; a version with no endpoints sits out', () => {
    const registry = new Registry(['catalog'])
    const set = new EndpointSet('catalog', registry, new Map([['v1', 90], ['v2', 10]]))
    registry.add(ep('v1-a'))
    registry.add({...ep('v2-a'), version: 'v2'})
    const picks = Array.from({length: 1000}, () => set.pickVersion())
    expect(picks.filter((v) => v === 'v2').length).toBe(100)
    registry.remove('catalog', 'v1-a')
    expect(Array.from({length: 10}, () => set.pickVersion())).toEqual(Array(10).fill('v2'))
  })

  test('a version without weight gets no traffic even when its instances are healthy', () => {
    const registry = new Registry(['catalog'])
    const set = new EndpointSet('catalog', registry, new Map([['v1', 100]]))
    registry.add({...ep('v2-a'), version: 'v2'})
    expect(set.pickVersion()).toBeUndefined()
    registry.add(ep('v1-a'))
    expect(set.pickVersion()).toBe('v1')
  })
})
