import {describe, expect, test} from 'vitest'
import {availableEndpoints} from '../../src/sim/proxy/balance/panic.js'

const all = ['a', 'b', 'c', 'd']

describe('panic threshold', () => {
  test('all available: the same array comes back, no panic', () => {
    const r = availableEndpoints(all, () => true)
    expect(r).toEqual({candidates: all, panic: false})
    expect(r.candidates).toBe(all)
  })

  test('at or above the threshold: only the available ones', () => {
    expect(availableEndpoints(all, (e) => e !== 'b' && e !== 'c')).toEqual({candidates: ['a', 'd'], panic: false})
    expect(availableEndpoints(all, (e) => e !== 'b')).toEqual({candidates: ['a', 'c', 'd'], panic: false})
  })

  test('below the threshold: balance over all of them, in panic', () => {
    expect(availableEndpoints(all, (e) => e === 'a')).toEqual({candidates: all, panic: true})
    expect(availableEndpoints(all, () => false)).toEqual({candidates: all, panic: true})
  })

  test('a custom threshold, and 0 disables panic', () => {
    expect(availableEndpoints(all, (e) => e === 'a', 25).panic).toBe(false)
    expect(availableEndpoints(all, (e) => e !== 'a', 80).panic).toBe(true)
    expect(availableEndpoints(all, () => false, 0)).toEqual({candidates: [], panic: false})
  })

  test('no endpoints at all is not panic', () => {
    expect(availableEndpoints([], () => true)).toEqual({candidates: [], panic: false})
  })
})
