import {describe, expect, it} from 'vitest'
import {didYouMean, distance, suggestion} from '../../src/sim/config/did-you-mean.js'

describe('didYouMean', () => {
  const keys = ['command', 'cwd', 'env', 'simulate', 'address', 'port', 'replicas', 'versions', 'dependsOn', 'health', 'stopGracePeriod', 'policy']

  it('suggests the closest key for a slip of a letter or two', () => {
    expect(didYouMean('replica', keys)).toBe('replicas')
    expect(didYouMean('comand', keys)).toBe('command')
    expect(didYouMean('simualte', keys)).toBe('simulate')
    expect(didYouMean('depends', keys)).toBe('dependsOn')
  })

  it('forgives case slips and truncated long names', () => {
    expect(didYouMean('dependson', keys)).toBe('dependsOn')
    expect(didYouMean('consecutive5xx', ['consecutive5xxErrors', 'interval'])).toBe('consecutive5xxErrors')
  })

  it('stays quiet when nothing is close', () => {
    expect(didYouMean('image', keys)).toBeUndefined()
    expect(didYouMean('x', ['cwd', 'env'])).toBeUndefined()
    expect(suggestion('image', keys)).toBe('')
  })

  it('formats a ready-to-append hint', () => {
    expect(suggestion('replica', keys)).toBe('; did you mean "replicas"?')
  })

  it('counts a swap of neighbours as one edit', () => {
    expect(distance('ab', 'ba')).toBe(1)
    expect(distance('kitten', 'sitting')).toBe(3)
    expect(distance('', 'abc')).toBe(3)
  })
})
