import {describe, expect, test} from 'vitest'
import {LruMap} from '../../src/sim/lru-map.js'

describe('LruMap', () => {
  test('evicts the least recently used; get and set both count as use', () => {
    const lru = new LruMap<string, number>(3)
    expect(lru.set('a', 1)).toBeUndefined()
    lru.set('b', 2)
    lru.set('c', 3)
    expect(lru.get('a')).toBe(1) // order now b, c, a
    lru.set('b', 20) // c, a, b
    expect([...lru.keys()]).toEqual(['c', 'a', 'b'])
    expect(lru.set('d', 4)).toEqual(['c', 3])
    expect([...lru.keys()]).toEqual(['a', 'b', 'd'])
    expect(lru.get('c')).toBeUndefined()
    expect(lru.size).toBe(3)
  })

  test('delete unlinks from anywhere in the order; a cap of 1 keeps the newest', () => {
    const lru = new LruMap<string, number>(4)
    for (const k of ['a', 'b', 'c', 'd']) lru.set(k, 0)
    expect(lru.delete('b')).toBe(true)
    expect(lru.delete('b')).toBe(false)
    expect(lru.delete('d')).toBe(true)
    expect(lru.delete('a')).toBe(true)
    expect([...lru.keys()]).toEqual(['c'])
    lru.set('e', 1)
    expect([...lru.keys()]).toEqual(['c', 'e'])
    const one = new LruMap<string, number>(1)
    one.set('x', 1)
    expect(one.set('y', 2)).toEqual(['x', 1])
    expect([...one.keys()]).toEqual(['y'])
    expect(() => new LruMap(0)).toThrow(RangeError)
  })
})
