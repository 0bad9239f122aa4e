import {describe, expect, it} from 'vitest'
import {describeUnstable, entryService, offeredLoads, unstableServices} from '../../src/sim/virtual/capacity-check.js'
import {parsed, yaml} from '../config/helpers.js'

const byName = (loads: ReturnType<typeof offeredLoads>) => Object.fromEntries(loads.map((l) => [l.service, l]))

describe('offeredLoads', () => {
  const chain = parsed(
    yaml(
      'name: shop',
      'ingress: {port: 0, routes: [{prefix: /, service: web}]}',
      'services:',
      '  web:',
      '    replicas: 2',
      '    simulate: {concurrency: 4, latency: {distribution: exponential, mean: 10ms}, calls: [{service: pay, probability: 0.5}]}',
      '  pay:',
      '    simulate: {concurrency: 1, latency: {distribution: constant, mean: 20ms}}',
    ),
  )

  it('follows the call graph from the ingress: rates by call probability, slot time = own latency + sequential calls', () => {
    const loads = byName(offeredLoads(chain, 200))
    expect(loads.web).toMatchObject({rps: 200, meanSlotMs: 10 + 0.5 * 20, slots: 8, bounded: true})
    expect(loads.pay).toMatchObject({rps: 100, meanSlotMs: 20, slots: 1})
    // ρ = λ·T/slots: web 200/s × 20ms ÷ 8, pay 100/s × 20ms ÷ 1.
    expect(loads.web.utilisation).toBeCloseTo(0.5, 12)
    expect(loads.pay.utilisation).toBeCloseTo(2, 12)
    expect(unstableServices(offeredLoads(chain, 200))).toEqual([{service: 'pay', utilisation: 2}])
    expect(unstableServices(offeredLoads(chain, 40))).toEqual([])
  })

  it('says which services are unstable, with the utilisation of each', () => {
    expect(describeUnstable([{service: 'pay', utilisation: 2}])).toBe(
      "unstable: arrivals exceed capacity at pay (utilisation 200%). Its queue grows for as long as the run lasts, so its latencies reflect the run's length, not a steady state: lower the load, or raise replicas or concurrency",
    )
    expect(describeUnstable([{service: 'a', utilisation: 1.04}, {service: 'b', utilisation: 3}])).toMatch(/^unstable: arrivals exceed capacity at a \(utilisation 104%\), b \(utilisation 300%\)\. Their queues grow/)
    expect(describeUnstable([])).toBeUndefined()
  })

  it('takes a parallel fan-out as long as its longest branch, splits by version weight, and models a command by its simulate: beside it', () => {
    const config = parsed(
      yaml(
        'name: shop',
        'services:',
        '  front:',
        '    command: node front.js',
        '    simulate: {concurrency: 10, latency: {distribution: constant, mean: 5ms}, callMode: parallel, calls: [{service: a}, {service: b}]}',
        '  a:',
        '    versions: {v1: {simulate: {concurrency: 2, latency: 30ms}}, v2: {simulate: {concurrency: 2, latency: 10ms}}}',
        '    policy: {weights: {v1: 75, v2: 25}}',
        '  b:',
        '    simulate: {latency: 40ms}',
      ),
    )
    const loads = byName(offeredLoads(config, 100))
    // a responds in 0.75·30 + 0.25·10 = 25ms on average; b in 40ms: the fan-out takes the longer.
    expect(loads.front.meanSlotMs).toBeCloseTo(5 + 40, 12)
    expect(loads.a.meanSlotMs).toBeCloseTo(25, 12)
    // The busiest version: v1 gets 75/s × 30ms on 2 slots, v2 25/s × 10ms on 2.
    expect(loads.a.utilisation).toBeCloseTo((75 * 0.03) / 2, 12)
    // Unbounded concurrency never queues: mean in flight per instance, and never unstable.
    expect(loads.b).toMatchObject({bounded: false, slots: 0})
    expect(loads.b.utilisation).toBeCloseTo(100 * 0.04, 12)
    expect(unstableServices(offeredLoads(config, 10_000)).map((u) => u.service)).toEqual(['front', 'a'])
  })

  it('starts where mesh sim sends requests: the route matching the path, else the first service', () => {
    expect(entryService(chain)).toBe('web')
    const bare = parsed(yaml('name: x', 'services:', '  first: {simulate: {}}', '  second: {simulate: {}}'))
    expect(entryService(bare)).toBe('first')
    expect(byName(offeredLoads(bare, 50)).second.rps).toBe(0)
  })
})
