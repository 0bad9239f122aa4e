// `mesh top`'s topology on a 100-service mesh (the `large` template's architecture, as a
// snapshot): too many boxes for a terminal, so it draws a legible part, says which, and the
// `/` filter or a selected service picks the part. A small mesh is still drawn whole.
import {describe, expect, test} from 'vitest'
import type {MeshStatus, ServiceStatus} from '../../src/sim/control/status.js'
import {generateLarge} from '../../src/sim/templates/large-architecture.js'
import {buildModel, renderTopology, type TopModel} from '../../src/sim/ui/snapshot.js'

const AT = Date.parse('2025-01-01T12:00:30Z')
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

function modelOf(services: number): {model: TopModel; calls: Map<string, string[]>} {
  const arch = generateLarge({services, seed: 4})
  const calls = new Map(arch.services.map((s) => [s.name, s.calls.map((c) => c.service)]))
  const status: MeshStatus = {
    name: 'large', configFile: '/tmp/mesh.yaml', phase: 'running', daemonPid: 1, controlUrl: 'http://127.0.0.1:1',
    ingress: {url: 'http://127.0.0.1:8000', routes: [{prefix: '/', service: 'gateway'}]}, startedAt: '2025-01-01T12:00:00Z',
    services: arch.services.map((s): ServiceStatus => ({
      name: s.name, dependsOn: calls.get(s.name)!, versions: [{name: 'v1', replicas: 1, weight: 100}], panic: false, faults: [],
      instances: [{instance: `${s.name}-v1-0`, service: s.name, version: 'v1', kind: 'simulate', address: '127.0.0.1:1', inboundAddress: '127.0.0.1:2', state: 'running', health: 'healthy', registered: true, restarts: 0}],
    })),
  }
  return {model: buildModel({status, serviceStats: [], edgeStats: [], traces: [], events: [], windowMs: 10_000, now: AT}), calls}
}

/** The names drawn whole in the pane (a name is never followed by more name characters). */
const drawn = (pane: string, names: string[]) => names.filter((n) => new RegExp(`(?<![\\w-])${n}(?![\\w-])`).test(pane))

describe('mesh top topology, 100 services', () => {
  const {model, calls} = modelOf(100)
  const names = model.services.map((s) => s.name)
  const callers = (name: string) => names.filter((n) => calls.get(n)!.includes(name))

  test('draws the mesh from the ingress as many calls deep as fits, every name whole, and says so', () => {
    const lines = renderTopology(model, {width: 160, height: 24, colour: false}).map(plain)
    expect(lines).toHaveLength(24)
    const pane = lines.join('\n')
    expect(pane).not.toContain('…')
    expect(pane).not.toContain('not shown')
    const note = lines.at(-1)!
    const [, shown, hops] = /^(\d+) of 100 services: (\d+) calls? deep from the ingress · \/ filters · select a service to focus it$/.exec(note) ?? []
    expect(Number(shown)).toBeGreaterThan(3)
    expect(Number(shown)).toBeLessThan(100)
    // Exactly the services within that many calls of the gateway.
    let within = new Set(['gateway'])
    for (let h = 0; h < Number(hops); h++) within = new Set([...within, ...[...within].flatMap((n) => calls.get(n)!)])
    expect(drawn(pane.split('\n').slice(0, -1).join('\n'), names).sort()).toEqual([...within].sort())
    expect(within.size).toBe(Number(shown))
  })

  test('with a / filter: the matching services and their callees (their callers too crowd the pane)', () => {
    const lines = renderTopology(model, {width: 160, height: 24, colour: false, filter: 'orders'}).map(plain)
    const pane = lines.join('\n')
    expect(lines.at(-1)).toMatch(/^\d+ of 100 services: "orders" with callees · \/ filters$/)
    const matching = names.filter((n) => n.includes('orders'))
    expect(matching.length).toBeGreaterThan(1)
    const expected = new Set([...matching, ...matching.flatMap((m) => calls.get(m)!)])
    expect(drawn(pane, names).sort()).toEqual([...expected].sort())
    expect(pane).not.toContain('…')
  })

  test('with a service selected in the table: it, its callers and callees', () => {
    for (const selected of ['orders', 'orders-db']) {
      const pane = renderTopology(model, {width: 120, height: 20, colour: false, selected}).map(plain).join('\n')
      expect(pane).toContain(`of 100 services: ${selected} with callers and callees`)
      expect(drawn(pane, names).sort()).toEqual([selected, ...calls.get(selected)!, ...callers(selected)].sort())
      expect(pane).not.toContain('…')
    }
  })

  test('a 10-service mesh is still drawn whole, with no note', () => {
    const small = modelOf(10).model
    const lines = renderTopology(small, {width: 120, height: 20, colour: false}).map(plain)
    const pane = lines.join('\n')
    expect(drawn(pane, small.services.map((s) => s.name))).toHaveLength(10)
    expect(pane).not.toMatch(/of 10 services/)
  })
})
