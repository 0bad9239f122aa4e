import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import type {Span} from '../../src/sim/telemetry/span.js'
import {Telemetry} from '../../src/sim/telemetry/telemetry.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const hop = (path: string, extra: Partial<Span> = {}): Span => ({
  kind: 'server',
  traceId: 'a'.repeat(32),
  spanId: 'b'.repeat(16),
  name: 'GET /',
  service: 'api',
  instance: 'api-v1-0',
  peerService: 'ingress',
  method: 'GET',
  path,
  status: 200,
  startMs: Date.UTC(2026, 10, 22, 3, 4, 5, 67),
  durationMs: 1.234,
  ...extra,
})

describe('access log lines', () => {
  let dir: string | undefined
  afterEach(() => dir && rmSync(dir, {recursive: true, force: true}))

  it('are one JSON object per line, whatever the path and cause hold', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-access-'))
    const telemetry = new Telemetry({clock: new VirtualClock(), accessLogDir: dir})
    const paths = ['/plain?a=1&b=2', '/quote"d', '/back\\slash', '/tab\there', '/caf\u00e9', '/emoji\u{1F600}']
    for (const p of paths) telemetry.record(hop(p))
    telemetry.record(hop('/x', {status: 503, responseFlags: 'UO', cause: 'said "no"\n'}))
    await telemetry.close()
    const lines = readFileSync(path.join(dir, 'api-v1-0.log'), 'utf8').trimEnd().split('\n')
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(parsed.map((l) => l.path)).toEqual([...paths, '/x'])
    expect(parsed[0]).toEqual({
      time: '2026-11-22T03:04:05.067Z',
      side: 'inbound',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      source: 'ingress',
      destination: 'api-v1-0',
      method: 'GET',
      path: '/plain?a=1&b=2',
      status: 200,
      durationMs: 1.23,
      attempt: 1,
      flags: '-',
    })
    expect(parsed.at(-1)).toMatchObject({status: 503, flags: 'UO', cause: 'said "no"\n'})
  })
})
