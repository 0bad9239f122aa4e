// The topology layout on its own: boxes never overlap, every call is drawn, the
// same services give the same picture, and 30 services fit 120×40 and 80×24.
import {describe, expect, test} from 'vitest'
import {layoutTopology, type LayoutBox, type TopologyInput, type TopologyLayout} from '../../src/sim/ui/topology-layout.js'

const shop: TopologyInput = {
  roots: ['frontend'],
  services: [
    {name: 'frontend', dependsOn: ['catalog', 'cart']},
    {name: 'catalog', dependsOn: ['inventory', 'recommendations']},
    {name: 'cart', dependsOn: ['payments']},
    {name: 'inventory', dependsOn: []},
    {name: 'payments', dependsOn: []},
    {name: 'recommendations', dependsOn: []},
  ],
}

/** 30 services, four levels deep, with shared callees and a few services nothing routes to. */
function thirty(): TopologyInput {
  const services: TopologyInput['services'] = []
  services.push({name: 'gateway', dependsOn: ['web-frontend', 'mobile-bff', 'partner-api']})
  const mids = ['web-frontend', 'mobile-bff', 'partner-api']
  const leaves = Array.from({length: 8}, (_, i) => `domain-service-${i}`)
  const stores = Array.from({length: 12}, (_, i) => `store-${i}`)
  mids.forEach((m, i) => services.push({name: m, dependsOn: leaves.filter((_, j) => j % 3 === i || j === 7)}))
  leaves.forEach((l, i) => services.push({name: l, dependsOn: [...new Set([stores[i], stores[(i + 5) % 12], stores[(i * 7) % 12]])]}))
  stores.forEach((s) => services.push({name: s, dependsOn: []}))
  // Not reachable from the ingress: batch jobs calling into the graph (edges back to earlier columns).
  services.push({name: 'nightly-batch-reconciler', dependsOn: ['domain-service-2', 'store-3']})
  services.push({name: 'reporting', dependsOn: ['store-4']})
  services.push({name: 'admin', dependsOn: ['reporting']})
  services.push({name: 'audit-log', dependsOn: []})
  services.push({name: 'search-indexer', dependsOn: ['store-0']})
  services.push({name: 'mailer', dependsOn: []})
  return {roots: ['gateway'], services}
}

function overlaps(a: LayoutBox, b: LayoutBox): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

function expectSound(input: TopologyInput, layout: TopologyLayout, width: number, height: number) {
  const names = input.services.map((s) => s.name)
  expect(layout.hidden).toEqual([])
  expect(layout.boxes.map((b) => b.service).sort()).toEqual([...names].sort())
  for (const b of layout.boxes) {
    expect(b.x).toBeGreaterThanOrEqual(0)
    expect(b.y).toBeGreaterThanOrEqual(0)
    expect(b.x + b.w, b.service).toBeLessThanOrEqual(width)
    expect(b.y + b.h, b.service).toBeLessThanOrEqual(height)
    // A label is the name, or a prefix of it ending in …, and fits inside the box.
    expect(b.label.length).toBeLessThanOrEqual(b.w - 2)
    expect(b.label === b.service || (b.label.endsWith('…') && b.service.startsWith(b.label.slice(0, -1)))).toBe(true)
  }
  for (let i = 0; i < layout.boxes.length; i++) {
    for (let j = i + 1; j < layout.boxes.length; j++) {
      expect(overlaps(layout.boxes[i], layout.boxes[j]), `${layout.boxes[i].service} overlaps ${layout.boxes[j].service}`).toBe(false)
    }
  }
  const wanted = input.services.flatMap((s) => s.dependsOn.map((d) => `${s.name}→${d}`)).sort()
  expect(layout.edges.map((e) => `${e.from}→${e.to}`).sort()).toEqual(wanted)
  const byName = new Map(layout.boxes.map((b) => [b.service, b]))
  for (const e of layout.edges) {
    expect(e.points.length).toBeGreaterThanOrEqual(2)
    for (const p of e.points) {
      expect(p.x >= 0 && p.x < width && p.y >= 0 && p.y < height, `${e.from}→${e.to} point ${p.x},${p.y}`).toBe(true)
    }
    // Orthogonal segments only.
    for (let k = 1; k < e.points.length; k++) expect(e.points[k].x === e.points[k - 1].x || e.points[k].y === e.points[k - 1].y).toBe(true)
    // It starts beside the caller and ends beside the callee, where the arrow goes.
    const from = byName.get(e.from)!
    const to = byName.get(e.to)!
    const start = e.points[0]
    const end = e.points[e.points.length - 1]
    expect(start).toEqual({x: from.x + from.w, y: from.y + Math.floor(from.h / 2)})
    expect(end).toEqual(e.arrow === '▶' ? {x: to.x - 1, y: to.y + Math.floor(to.h / 2)} : {x: to.x + to.w, y: to.y + Math.floor(to.h / 2)})
  }
}

describe('layoutTopology', () => {
  test('the shop: columns by call depth from the ingress, names in full, roomy boxes at 120×40', () => {
    const layout = layoutTopology(shop, 120, 20)
    expectSound(shop, layout, 120, 20)
    const column = (n: string) => layout.boxes.find((b) => b.service === n)!.column
    expect(['frontend', 'catalog', 'cart', 'inventory', 'recommendations', 'payments'].map(column)).toEqual([0, 1, 1, 2, 2, 2])
    expect(layout.boxes.every((b) => b.h === 3 && b.label === b.service)).toBe(true)
    // Callees sit in their callers' order: catalog above cart, so inventory/recommendations above payments.
    const y = (n: string) => layout.boxes.find((b) => b.service === n)!.y
    expect(y('catalog')).toBeLessThan(y('cart'))
    expect(Math.max(y('inventory'), y('recommendations'))).toBeLessThan(y('payments'))
  })

  test('services the ingress never reaches go in one last column', () => {
    const input: TopologyInput = {...shop, services: [...shop.services, {name: 'batch', dependsOn: ['payments']}, {name: 'lonely', dependsOn: []}]}
    const layout = layoutTopology(input, 120, 30)
    expectSound(input, layout, 120, 30)
    const col = (n: string) => layout.boxes.find((b) => b.service === n)!.column
    expect(col('batch')).toBe(3)
    expect(col('lonely')).toBe(3)
    expect(layout.edges.find((e) => e.from === 'batch')!.arrow).toBe('◀')
  })

  test('without an ingress, the services nobody calls are the roots', () => {
    const layout = layoutTopology({...shop, roots: []}, 100, 20)
    expect(layout.boxes.find((b) => b.service === 'frontend')!.column).toBe(0)
    expect(layout.boxes.find((b) => b.service === 'payments')!.column).toBe(2)
  })

  test('calls seen on the wire but not in dependsOn are drawn too; unknown names and self-calls are not', () => {
    const layout = layoutTopology({...shop, extraEdges: [{from: 'cart', to: 'inventory'}, {from: 'cart', to: 'nowhere'}, {from: 'cart', to: 'cart'}]}, 120, 20)
    expect(layout.edges.map((e) => `${e.from}→${e.to}`)).toContain('cart→inventory')
    expect(layout.edges).toHaveLength(6)
  })

  for (const [width, height] of [[120, 40], [80, 24], [120, 20], [80, 12]] as const) {
    test(`30 services fit ${width}×${height}: no overlap, every edge, inside the area`, () => {
      const input = thirty()
      expectSound(input, layoutTopology(input, width, height), width, height)
    })
  }

  test('30 services at 120×40 keep readable names; at 80×24 long names are cut with …', () => {
    const wide = layoutTopology(thirty(), 120, 40)
    expect(wide.boxes.filter((b) => b.label !== b.service).map((b) => b.service)).toEqual(['nightly-batch-reconciler'])
    const narrow = layoutTopology(thirty(), 80, 24)
    expect(narrow.boxes.some((b) => b.label.endsWith('…'))).toBe(true)
    expect(narrow.boxes.every((b) => b.label.length >= 3)).toBe(true)
  })

  test('deterministic: the same input gives the same layout, whatever came before', () => {
    const a = JSON.stringify(layoutTopology(thirty(), 120, 40))
    layoutTopology(shop, 80, 24)
    expect(JSON.stringify(layoutTopology(thirty(), 120, 40))).toBe(a)
  })

  test('what cannot fit at all is named, not drawn on top of something else', () => {
    const chain: TopologyInput = {roots: ['s0'], services: Array.from({length: 30}, (_, i) => ({name: `s${i}`, dependsOn: i < 29 ? [`s${i + 1}`] : []}))}
    const layout = layoutTopology(chain, 80, 24)
    expect(layout.hidden.length).toBeGreaterThan(0)
    expect(layout.boxes.length + layout.hidden.length).toBe(30)
    for (const b of layout.boxes) expect(b.x + b.w).toBeLessThanOrEqual(80)
    for (let i = 0; i < layout.boxes.length; i++) for (let j = i + 1; j < layout.boxes.length; j++) expect(overlaps(layout.boxes[i], layout.boxes[j])).toBe(false)
  })

  test('empty mesh, tiny area: no boxes, no throw', () => {
    expect(layoutTopology({roots: [], services: []}, 80, 24)).toMatchObject({boxes: [], edges: [], hidden: []})
    expect(() => layoutTopology(shop, 5, 1)).not.toThrow()
  })
})
