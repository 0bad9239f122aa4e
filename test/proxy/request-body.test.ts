import {PassThrough} from 'node:stream'
import {describe, expect, test} from 'vitest'
import {teeBody} from '../../src/sim/proxy/request-body.js'

describe('teeBody (an HTTP/2 request body: streamed at once, kept for a retry)', () => {
  test('each chunk goes on before the request ends; the whole body is kept when it ends within the bound', async () => {
    const req = new PassThrough()
    let whole: Buffer | undefined
    const live = teeBody(req, 10, (b) => (whole = b))
    const seen: string[] = []
    live.on('data', (c: Buffer) => seen.push(c.toString()))
    req.write('abc')
    await new Promise((r) => setImmediate(r))
    // The first message is through while the stream is still open (a gRPC stream waits for its answer).
    expect(seen).toEqual(['abc'])
    expect(whole).toBeUndefined()
    req.end('def')
    await new Promise((r) => live.once('end', r))
    expect(seen.join('')).toBe('abcdef')
    expect(whole?.toString()).toBe('abcdef')
  })

  test('a body past the bound still streams whole but is not kept: it will not be replayed', async () => {
    const req = new PassThrough()
    let kept = false
    const live = teeBody(req, 4, () => (kept = true))
    let total = ''
    live.on('data', (c: Buffer) => (total += c.toString()))
    req.write('abc')
    req.end('defgh')
    await new Promise((r) => live.once('end', r))
    expect(total).toBe('abcdefgh')
    expect(kept).toBe(false)
  })
})
