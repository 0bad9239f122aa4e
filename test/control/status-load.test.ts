import {describe, expect, test} from 'vitest'
import {describeLoad} from '../../src/sim/control/status.js'
import type {DestinationLoad} from '../../src/sim/proxy/destination.js'

const idle: DestinationLoad = {breaker: {requests: 0, pending: 0, connections: 0, retries: 0}, instances: {'api-v1-0': 0, 'api-v1-1': 0}}

describe('mesh status: a destination\'s load in the text view', () => {
  test('an idle destination (a TCP service\'s open connections included) gets no line', () => {
    expect(describeLoad('api', undefined)).toBeUndefined()
    expect(describeLoad('api', idle)).toBeUndefined()
    expect(describeLoad('db', {...idle, breaker: {...idle.breaker, connections: 4}})).toBeUndefined()
  })

  test('requests under way: what the breaker holds, and per instance those with any', () => {
    const load: DestinationLoad = {breaker: {requests: 3, pending: 1, connections: 2, retries: 0}, instances: {'api-v1-0': 2, 'api-v1-1': 0}}
    expect(describeLoad('api', load)).toBe('api: 3 in flight, 1 pending, 0 retrying (api-v1-0 2)')
    // A count left on an instance alone (the breaker released, the instance not) still shows.
    expect(describeLoad('api', {...idle, instances: {'api-v1-0': 0, 'api-v1-1': 1}})).toBe('api: 0 in flight, 0 pending, 0 retrying (api-v1-1 1)')
  })

  test('requests the activator holds for a scaled version (at zero, every instance full) are said', () => {
    const held: DestinationLoad = {breaker: {requests: 2, pending: 0, connections: 0, retries: 0}, instances: {}, activator: {v1: {inFlight: 0, held: 2}}}
    expect(describeLoad('fn', held)).toBe('fn: 2 in flight, 0 pending, 0 retrying; 2 held by the activator')
    const two: DestinationLoad = {...held, instances: {'fn-v2-0': 1}, activator: {v1: {inFlight: 0, held: 2}, v2: {inFlight: 1, held: 0}}}
    expect(describeLoad('fn', two)).toBe('fn: 2 in flight, 0 pending, 0 retrying (fn-v2-0 1); 2 held by the activator for v1')
    // Nothing held and nothing under way: no line, as for any idle destination.
    expect(describeLoad('fn', {...idle, activator: {v1: {inFlight: 0, held: 0}}})).toBeUndefined()
  })
})
