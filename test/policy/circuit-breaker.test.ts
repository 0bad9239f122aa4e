import {describe, expect, test} from 'vitest'
import {CircuitBreaker} from '../../src/sim/proxy/policy/circuit-breaker.js'

const limits = {maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 1}

describe('CircuitBreaker', () => {
  test('each limit admits up to its value, refuses the next at once, and admits again after a release', () => {
    const cb = new CircuitBreaker(limits)
    const kinds = [
      ['Request', 3],
      ['Pending', 1],
      ['Retry', 1],
      ['Connection', 2],
    ] as const
    for (const [kind, max] of kinds) {
      const acquire = () => cb[`tryAcquire${kind}`]()
      for (let i = 0; i < max; i++) expect(acquire()).toBe(true)
      expect(acquire()).toBe(false)
      cb[`release${kind}`]()
      expect(acquire()).toBe(true)
    }
    expect(cb.snapshot()).toEqual({
      limits,
      requests: 3,
      pending: 1,
      retries: 1,
      connections: 2,
      overflows: {requests: 1, pending: 1, retries: 1, connections: 1},
    })
  })

  test('a limit of 0 refuses everything; releasing more than acquired never goes negative', () => {
    const cb = new CircuitBreaker({...limits, maxRetries: 0, maxPendingRequests: 0})
    expect(cb.tryAcquireRetry()).toBe(false)
    expect(cb.tryAcquirePending()).toBe(false)
    cb.releaseRequest()
    cb.releaseRequest()
    expect(cb.snapshot().requests).toBe(0)
    expect(cb.tryAcquireRequest()).toBe(true)
  })

  test('lowering a limit at runtime refuses new work but keeps what is outstanding', () => {
    const cb = new CircuitBreaker(limits)
    cb.tryAcquireRequest()
    cb.tryAcquireRequest()
    cb.setConfig({...limits, maxRequests: 1})
    expect(cb.tryAcquireRequest()).toBe(false)
    expect(cb.snapshot().requests).toBe(2)
    cb.releaseRequest()
    cb.releaseRequest()
    expect(cb.tryAcquireRequest()).toBe(true)
  })
})
