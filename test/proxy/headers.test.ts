import {describe, expect, test} from 'vitest'
import {endToEndHeaders, endToEndPairs, hasRequestBody} from '../../src/sim/proxy/headers.js'

describe('hop-by-hop headers (RFC 9110 §7.6.1)', () => {
  test('drops the fixed hop-by-hop set and every header Connection names, keeps the rest', () => {
    const raw = [
      'Host', 'x',
      'Connection', 'close, X-Foo',
      'X-Foo', 'secret',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'Transfer-Encoding', 'chunked',
      'Proxy-Connection', 'keep-alive',
      'Upgrade', 'h2c',
      'Trailer', 'X-Sum',
      'X-Kept', 'yes',
    ]
    expect(endToEndHeaders(raw)).toEqual({host: 'x', 'x-kept': 'yes'})
  })

  test('every hop-by-hop name is stripped, requests and responses alike, whatever its case: proxy credentials, expect, http2-settings too', () => {
    const hopByHop = ['Connection', 'Keep-Alive', 'Proxy-Connection', 'Proxy-Authenticate', 'Proxy-Authorization', 'TE', 'Trailer', 'Transfer-Encoding', 'Upgrade', 'Expect', 'HTTP2-Settings']
    for (const name of hopByHop) {
      for (const spelled of [name, name.toLowerCase(), name.toUpperCase()]) {
        expect(endToEndHeaders(['Host', 'x', spelled, 'v', 'X-Kept', 'yes']), spelled).toEqual({host: 'x', 'x-kept': 'yes'})
        expect(endToEndPairs([spelled, 'v', 'X-Kept', 'yes']), spelled).toEqual(['X-Kept', 'yes'])
      }
    }
  })

  test('repeated headers stay in order as an array', () => {
    expect(endToEndHeaders(['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Accept', '*/*'])).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      accept: '*/*',
    })
  })

  test('response headers: the same filter on undici\'s raw Buffer pairs, kept as a list with names as sent', () => {
    const raw = ['Connection', 'X-Internal', 'x-internal', '1', 'Keep-Alive', 'timeout=4', 'Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']
    expect(endToEndPairs(raw.map((v) => Buffer.from(v, 'latin1')))).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'])
    expect(endToEndPairs(['Connection', 'close', 'Date', 'today'])).toEqual(['Date', 'today'])
  })

  test('a request has a body when it says Content-Length or Transfer-Encoding, in any case', () => {
    expect(hasRequestBody(['Host', 'x', 'Accept', '*/*'])).toBe(false)
    expect(hasRequestBody(['Host', 'x', 'Content-Length', '0'])).toBe(true)
    expect(hasRequestBody(['host', 'x', 'transfer-encoding', 'chunked'])).toBe(true)
    expect(hasRequestBody(['X-Content-Length', '5'])).toBe(false)
  })
})

describe('HTTP/2 requests (node:http2 puts the pseudo-headers first in rawHeaders)', () => {
  test('pseudo-headers are the request line, not headers; :authority becomes Host', () => {
    const raw = [':method', 'POST', ':path', '/shop.Catalog/List', ':scheme', 'http', ':authority', 'catalog:50051', 'content-type', 'application/grpc']
    expect(endToEndHeaders(raw)).toEqual({host: 'catalog:50051', 'content-type': 'application/grpc'})
    expect(endToEndHeaders([':authority', 'a', 'host', 'b'])).toEqual({host: 'b'})
  })

  test('te: trailers crosses an HTTP/2 hop (gRPC needs it); any other TE, or TE in HTTP/1.1, does not', () => {
    expect(endToEndHeaders([':path', '/', 'te', 'trailers'])).toEqual({te: 'trailers'})
    expect(endToEndHeaders([':path', '/', 'te', 'gzip'])).toEqual({})
    expect(endToEndHeaders(['Host', 'x', 'TE', 'trailers'])).toEqual({host: 'x'})
  })
})
