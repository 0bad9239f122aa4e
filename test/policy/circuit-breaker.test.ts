import {describe, expect, test} from 'vitest'
import {CircuitBreaker, ResourceLimit} from '../../src/sim/proxy/policy/circuit-breaker.js'

const limits = {maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 1}

describe('ResourceLimit', () => {
  test('admits up to max, refuses the next at once (counting it), and admits again after a release', () => {
    const r = new ResourceLimit(2)
    expect([r.tryAcquire(), r.tryAcquire(), r.tryAcquire()]).toEqual([true, true, false])
    expect([r.outstanding, r.overflows]).toEqual([2, 1])
    r.release()
    expect(r.tryAcquire()).toBe(true)
    expect([r.outstanding, r.overflows]).toEqual([2, 1])
  })

  test('a max of 0 refuses everything; releasing more than acquired never goes negative', () => {
    const r = new ResourceLimit(0)
    expect(r.tryAcquire()).toBe(false)
    r.release()
    r.release()
    expect(r.outstanding).toBe(0)
    r.max = 1
    expect(r.tryAcquire()).toBe(true)
    expect(r.tryAcquire()).toBe(false)
  })
})

describe('CircuitBreaker', () => {
  test('each of its four limits admits up to its own value, independently of the others', () => {
    const cb = new CircuitBreaker(limits)
    const kinds = [
      ['requests', 3],
      ['pending', 1],
      ['retries', 1],
      ['connections', 2],
    ] as const
    for (const [kind, max] of kinds) {
      for (let i = 0; i < max; i++) expect(cb[kind].tryAcquire()).toBe(true)
      expect(cb[kind].tryAcquire()).toBe(false)
      cb[kind].release()
      expect(cb[kind].tryAcquire()).toBe(true)
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
    expect(cb.retries.tryAcquire()).toBe(false)
    expect(cb.pending.tryAcquire()).toBe(false)
    cb.requests.release()
    cb.requests.release()
    expect(cb.snapshot().requests).toBe(0)
    expect(cb.requests.tryAcquire()).toBe(true)
  })

  test('new limits at run time (mesh apply) refuse new work but keep what is outstanding, for every limit', () => {
    const cb = new CircuitBreaker(limits)
    cb.requests.tryAcquire()
    cb.requests.tryAcquire()
    cb.connections.tryAcquire()
    const lower = {maxConnections: 1, maxPendingRequests: 0, maxRequests: 1, maxRetries: 0}
    cb.setConfig(lower)
    expect([cb.requests, cb.pending, cb.retries, cb.connections].map((r) => r.tryAcquire())).toEqual([false, false, false, false])
    expect(cb.snapshot()).toMatchObject({limits: lower, requests: 2, connections: 1})
    cb.requests.release()
    cb.requests.release()
    expect(cb.requests.tryAcquire()).toBe(true)
  })
})
