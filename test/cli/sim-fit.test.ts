// mesh sim --fit's command side against a stand-in for the running mesh's control API: what it
// says when the traces hold too little, when the store sampled, and when there is nothing to fit.
import {existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {fitFromRunningMesh} from '../../src/cli/sim-fit.js'
import type {ControlClient} from '../../src/sim/control/control-client.js'
import {MeshError} from '../../src/sim/errors.js'
import type {Span} from '../../src/sim/telemetry/span.js'

const MESH = `name: shop
services:
  checkout:
    command: node checkout.js
  payments:
    simulate: {latency: 30ms}
`

function meshFile(yaml = MESH): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'meshsim-fit-')), 'mesh.yaml')
  writeFileSync(file, yaml)
  return file
}

/** What the daemon's trace store would answer. */
function storeOf(spans: Span[], sampledOut = 0): ControlClient {
  return {
    spans: async () => spans,
    traceStore: async () => ({traces: 0, spans: spans.length, bytes: 0, evictedTraces: 0, droppedSpans: 0, sampling: {spansPerSecond: 500, keepProbability: 1, sampledOut}}),
  } as unknown as ControlClient
}

/** Requests checkout served, each calling `callee` (when given) for its first 5 ms. */
function checkoutRequests(n: number, callee?: string): Span[] {
  return Array.from({length: n}, (_, i) => {
    const id = (i + 1).toString(16).padStart(16, '0')
    const request: Span = {traceId: id.padStart(32, '0'), spanId: id, kind: 'server', name: 'GET /', service: 'checkout', method: 'GET', path: '/', status: 200, startMs: i * 100, durationMs: 10 + (i % 5)}
    if (!callee) return [request]
    const call: Span = {...request, spanId: `c${id.slice(1)}`, parentId: request.spanId, kind: 'client', peerService: callee, durationMs: 5}
    return [request, call]
  }).flat()
}

describe('fitFromRunningMesh', () => {
  test('too few requests of every command service: an error naming each with the reason, nothing written', async () => {
    const file = meshFile()
    const out = path.join(path.dirname(file), 'fitted.yaml')
    const error = await fitFromRunningMesh(storeOf(checkoutRequests(5)), {file, out, json: true, colour: false, log: () => {}}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MeshError)
    expect((error as MeshError).code).toBe('MESH_TRACE_NOT_FOUND')
    expect((error as MeshError).hints.join('\n')).toMatch(/checkout: only 5 of its requests could be measured/)
    expect(() => readFileSync(out)).toThrow()
  })

  test('a store that sampled is said to make the error rates upper bounds; --out writes the block', async () => {
    const file = meshFile()
    const out = path.join(path.dirname(file), 'fitted.yaml')
    const lines: string[] = []
    const report = await fitFromRunningMesh(storeOf(checkoutRequests(60, 'legacy'), 1200), {file, out, json: false, colour: false, log: (t) => lines.push(t)})
    expect(report.written).toBe(out)
    // Its calls went to a service the file no longer has: left out, and said.
    expect(report.services[0].model!.calls).toEqual([])
    expect(report.services[0].notes.join('\n')).toMatch(/calls to legacy are left out: no such service in mesh\.yaml/)
    expect(lines.join('\n')).toMatch(/1200 span\(s\) left out.*upper bounds/)
    expect(readFileSync(out, 'utf8')).toMatch(/ {4}command: node checkout\.js\n {4}# fitted by mesh sim --fit from 60 requests on [\d-]+\n {4}simulate:\n {6}latency: /)
    // The input is left as it was.
    expect(readFileSync(file, 'utf8')).toBe(MESH)
  })

  test('a file with no command: service (a TCP one cannot have a model) has nothing to fit', async () => {
    const file = meshFile('name: sim\nservices:\n  a: {simulate: {latency: 5ms}}\n  db: {command: node db.js, protocol: tcp}\n')
    await expect(fitFromRunningMesh(storeOf([]), {file, json: true, colour: false, log: () => {}})).rejects.toThrow(/no command: service/)
  })

  test('the mesh going away mid-read (mesh down): a clear error, and no file written, not even in part', async () => {
    const file = meshFile()
    const out = path.join(path.dirname(file), 'fitted.yaml')
    // What ControlClient throws when the daemon's answer is cut off or never comes.
    const gone = () => Promise.reject(new MeshError('MESH_DAEMON_UNREACHABLE', 'the mesh daemon at http://127.0.0.1:1 did not answer.', {cause: new Error('aborted')}))
    for (const client of [{...storeOf(checkoutRequests(60)), spans: gone}, {...storeOf(checkoutRequests(60)), traceStore: gone}]) {
      const error = await fitFromRunningMesh(client as unknown as ControlClient, {file, out, json: false, colour: false, log: () => {}}).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(MeshError)
      expect(error).toMatchObject({code: 'MESH_DAEMON_UNREACHABLE', message: expect.stringMatching(/stopped answering while mesh sim --fit read its traces.*: nothing was written/)})
      expect((error as MeshError).hints.join('\n')).toMatch(/mesh up -d/)
      expect(existsSync(out)).toBe(false)
    }
  })

  test('--out is replaced in one step: in place, a link to mesh.yaml stays a link; a write that fails is an error naming the file', async () => {
    const file = meshFile()
    const dir = path.dirname(file)
    const link = path.join(dir, 'linked.yaml')
    symlinkSync(file, link)
    const report = await fitFromRunningMesh(storeOf(checkoutRequests(60)), {file: link, out: link, json: true, colour: false, log: () => {}})
    expect(report.written).toBe(link)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect(readFileSync(file, 'utf8')).toMatch(/# fitted by mesh sim --fit/)
    // Nothing but mesh.yaml and the link: no temporary file left.
    expect(readdirSync(dir).sort()).toEqual(['linked.yaml', 'mesh.yaml'])

    const error = await fitFromRunningMesh(storeOf(checkoutRequests(60)), {file, out: dir, json: true, colour: false, log: () => {}}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'MESH_BAD_FLAG', message: expect.stringContaining(`cannot write --out ${dir}`)})
  })
})
