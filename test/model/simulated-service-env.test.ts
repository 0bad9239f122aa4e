import {describe, expect, it} from 'vitest'
import {parseSimulateConfig, readSimulatedServiceEnv} from '../../src/sim/model/simulated-service.js'
import {MeshError} from '../../src/sim/errors.js'

const simulate = JSON.stringify({
  latency: {p50Ms: 20, p99Ms: 120},
  errorRate: 0.01,
  errorStatus: 503,
  calls: [
    {service: 'inventory', probability: 0.5, path: '/stock', method: 'GET'},
    {service: 'order-history', probability: 1, path: '/', method: 'GET'},
  ],
  callMode: 'parallel',
  responseBytes: 1024,
  concurrency: 10,
  seed: 42,
})

function errorOf(fn: () => unknown): MeshError {
  try {
    fn()
  } catch (error) {
    if (error instanceof MeshError) return error
    throw error
  }
  throw new Error('expected a MeshError')
}

describe('readSimulatedServiceEnv', () => {
  it('reads the env contract the supervisor sets', () => {
    const env = readSimulatedServiceEnv({
      PORT: '4100',
      MESH_SERVICE: 'catalog',
      MESH_VERSION: 'v2',
      MESH_INSTANCE: 'catalog-v2-1',
      MESH_SIMULATE: simulate,
      INVENTORY_URL: 'http://127.0.0.1:41234',
    })
    expect(env).toMatchObject({port: 4100, service: 'catalog', version: 'v2', instance: 'catalog-v2-1'})
    expect(env.config.callMode).toBe('parallel')
    expect(env.config.calls[0]).toEqual({service: 'inventory', probability: 0.5, path: '/stock', method: 'GET'})
    expect(env.dependencyUrls).toEqual({inventory: 'http://127.0.0.1:41234'})
    expect(env.missingUrls).toEqual(['order-history'])
  })

  it('rejects a missing or invalid PORT', () => {
    expect(errorOf(() => readSimulatedServiceEnv({MESH_SIMULATE: simulate})).code).toBe('MESH_BAD_ENV')
    expect(errorOf(() => readSimulatedServiceEnv({PORT: 'eighty', MESH_SIMULATE: simulate})).message).toMatch(/PORT must be a port number/)
  })

  it('rejects a missing or unparsable MESH_SIMULATE', () => {
    expect(errorOf(() => readSimulatedServiceEnv({PORT: '1'})).message).toMatch(/MESH_SIMULATE is not set/)
    expect(errorOf(() => readSimulatedServiceEnv({PORT: '1', MESH_SIMULATE: '{nope'})).message).toMatch(/not valid JSON/)
  })
})

describe('parseSimulateConfig', () => {
  it('fills defaults for what is absent', () => {
    expect(parseSimulateConfig({latency: {p50Ms: 5, p99Ms: 20}, calls: [{service: 'x'}]})).toEqual({
      latency: {p50Ms: 5, p99Ms: 20},
      errorRate: 0,
      errorStatus: 500,
      calls: [{service: 'x', probability: 1, path: '/', method: 'GET'}],
      callMode: 'sequential',
      responseBytes: 256,
      concurrency: 0,
      seed: 0,
    })
  })

  it('carries callErrorStatus when given (what mesh sim\'s model answers too), and refuses one that is no status', () => {
    expect(parseSimulateConfig({callErrorStatus: 502}).callErrorStatus).toBe(502)
    expect(errorOf(() => parseSimulateConfig({callErrorStatus: 99})).message).toMatch(/callErrorStatus: expected an HTTP status 100\.\.599/)
  })

  it('keeps a latency distribution and its parameters, so mesh up\'s simulated services draw from it too', () => {
    const exponential = {p50Ms: 20 * Math.LN2, p99Ms: 20 * Math.log(100), distribution: 'exponential' as const, meanMs: 20}
    const empirical = {p50Ms: 3, p99Ms: 8.92, distribution: 'empirical' as const, samplesMs: [1, 3, 9]}
    const config = parseSimulateConfig(JSON.parse(JSON.stringify({latency: exponential, coldStart: empirical})))
    expect(config.latency).toEqual(exponential)
    expect(config.coldStart).toEqual(empirical)
    expect(errorOf(() => parseSimulateConfig({latency: {distribution: 'gamma'}})).message).toMatch(/latency\.distribution: expected lognormal \| exponential/)
    expect(errorOf(() => parseSimulateConfig({latency: {distribution: 'empirical'}})).message).toMatch(/latency\.samplesMs: expected a non-empty array/)
  })

  it('names the field that has the wrong type', () => {
    expect(errorOf(() => parseSimulateConfig({errorRate: 2})).message).toMatch(/MESH_SIMULATE\.errorRate: expected a ratio 0\.\.1, got 2/)
    expect(errorOf(() => parseSimulateConfig({calls: [{probability: 1}]})).message).toMatch(/calls\[0\]\.service/)
    expect(errorOf(() => parseSimulateConfig({latency: {p50Ms: 50, p99Ms: 10}})).message).toMatch(/latency\.p99Ms/)
    expect(errorOf(() => parseSimulateConfig({callMode: 'random'})).message).toMatch(/callMode/)
  })
})
