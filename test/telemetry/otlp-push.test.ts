import {once} from 'node:events'
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {OtlpPusher, type OtlpPost} from '../../src/sim/telemetry/otlp-push.js'
import type {Span} from '../../src/sim/telemetry/span.js'
import {realClock, VirtualClock} from '../../src/sim/time/clock.js'

const span = (n: number): Span => ({
  traceId: 'ab'.repeat(16), spanId: n.toString(16).padStart(16, '0'), kind: 'server', name: 'GET /', service: 'web',
  method: 'GET', path: '/', status: 200, startMs: 1_700_000_000_000 + n, durationMs: 1,
})

function recordingPost(status = 200): {post: OtlpPost; calls: Array<{url: string; spans: number; at: number}>; clock: VirtualClock} {
  const clock = new VirtualClock()
  const calls: Array<{url: string; spans: number; at: number}> = []
  const post: OtlpPost = async (url, body) => {
    const doc = JSON.parse(body)
    calls.push({url, at: clock.now(), spans: doc.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)).length})
    return status
  }
  return {post, calls, clock}
}

describe('OtlpPusher', () => {
  it('batches by size and flushes the rest on the timer', async () => {
    const {post, calls, clock} = recordingPost()
    const pusher = new OtlpPusher({endpoint: 'http://collector:4318/', clock, flushMs: 2000, maxBatch: 10, post})
    for (let i = 0; i < 25; i++) pusher.push(span(i))
    await clock.advance(0)
    expect(calls.map((c) => c.spans)).toEqual([10, 10])
    expect(calls[0].url).toBe('http://collector:4318/v1/traces')
    await clock.advance(1999)
    expect(calls).toHaveLength(2)
    await clock.advance(1)
    expect(calls.map((c) => c.spans)).toEqual([10, 10, 5])
    expect(pusher.stats()).toMatchObject({sent: 25, dropped: 0, queued: 0})
  })

  it('drops and counts on failure, and never throws to the caller', async () => {
    const clock = new VirtualClock()
    const pusher = new OtlpPusher({
      endpoint: 'http://collector:4318',
      clock,
      maxBatch: 5,
      post: async () => {
        throw Object.assign(new Error('refused'), {code: 'ECONNREFUSED'})
      },
    })
    for (let i = 0; i < 5; i++) pusher.push(span(i))
    pusher.push(span(99))
    await pusher.close()
    expect(pusher.stats()).toMatchObject({sent: 0, dropped: 6, failedRequests: 2, lastError: 'ECONNREFUSED'})
    pusher.push(span(100)) // after close: dropped, not thrown
    expect(pusher.stats().dropped).toBe(7)
  })

  it('bounds the queue while a collector is slow', async () => {
    const clock = new VirtualClock()
    let release!: () => void
    const pusher = new OtlpPusher({
      endpoint: 'http://c', clock, maxBatch: 2, maxQueue: 4, timeoutMs: 60_000,
      post: () => new Promise((resolve) => (release = () => resolve(200))),
    })
    for (let i = 0; i < 10; i++) pusher.push(span(i))
    // 2 in flight, 4 queued, 4 dropped
    expect(pusher.stats()).toMatchObject({queued: 4, dropped: 4})
    release()
    await clock.advance(0)
    release()
    await clock.advance(0)
    release()
    await clock.advance(0)
    expect(pusher.stats()).toMatchObject({sent: 6, queued: 0, dropped: 4})
  })

  describe('over a real socket', () => {
    let server: http.Server | undefined
    afterEach(() => server?.close())

    it('POSTs OTLP/JSON to <endpoint>/v1/traces', async () => {
      const received: Array<{url?: string; type?: string; body: any}> = []
      server = http.createServer((req, res) => {
        let body = ''
        req.on('data', (c) => (body += c))
        req.on('end', () => {
          received.push({url: req.url, type: req.headers['content-type'], body: JSON.parse(body)})
          res.end('{}')
        })
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const {port} = server.address() as AddressInfo
      const pusher = new OtlpPusher({endpoint: `http://127.0.0.1:${port}`, clock: realClock, flushMs: 50})
      pusher.push(span(1))
      pusher.push(span(2))
      await pusher.close()
      expect(pusher.stats()).toMatchObject({sent: 2, dropped: 0})
      expect(received).toHaveLength(1)
      expect(received[0].url).toBe('/v1/traces')
      expect(received[0].type).toBe('application/json')
      expect(received[0].body.resourceSpans[0].scopeSpans[0].spans).toHaveLength(2)
    })
  })
})
