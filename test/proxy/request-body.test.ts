import {PassThrough} from 'node:stream'
import {describe, expect, test} from 'vitest'
import {TeeBody} from '../../src/sim/proxy/request-body.js'

describe('TeeBody (an HTTP/2 request body: streamed at once, kept for a retry or a mirror)', () => {
  test('each chunk goes on before the request ends; the whole body reaches every listener when it ends within the bound', async () => {
    const req = new PassThrough()
    const wholes: string[] = []
    const live = new TeeBody(req, 10)
    live.onWhole((b) => wholes.push(`first ${b}`))
    const seen: string[] = []
    live.on('data', (c: Buffer) => seen.push(c.toString()))
    req.write('abc')
    await new Promise((r) => setImmediate(r))
    // The first message is through while the stream is still open (a gRPC stream waits for its answer).
    expect(seen).toEqual(['abc'])
    expect(wholes).toEqual([])
    live.onWhole((b) => wholes.push(`second ${b}`))
    req.end('def')
    await new Promise((r) => live.once('end', r))
    expect(seen.join('')).toBe('abcdef')
    expect(wholes).toEqual(['first abcdef', 'second abcdef'])
    // A listener that comes later gets it at once.
    live.onWhole((b) => wholes.push(`late ${b}`))
    expect(wholes[2]).toBe('late abcdef')
  })

  test('a body past the bound still streams whole but is not kept: it will not be replayed or mirrored', async () => {
    const req = new PassThrough()
    let kept = false
    const live = new TeeBody(req, 4)
    live.onWhole(() => (kept = true))
    let total = ''
    live.on('data', (c: Buffer) => (total += c.toString()))
    req.write('abc')
    req.end('defgh')
    await new Promise((r) => live.once('end', r))
    live.onWhole(() => (kept = true))
    expect(total).toBe('abcdefgh')
    expect(kept).toBe(false)
  })
})
