// How a failed exchange with an instance is told apart: the client's fault, the instance's, or nobody's.
import {describe, expect, test} from 'vitest'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import {classify} from '../../src/sim/proxy/upstream.js'

const endpoint = {instance: 'api-v1-0', host: '127.0.0.1', port: 9000}
const live = new AbortController().signal
const coded = (message: string, code: string, name = 'Error') => Object.assign(new Error(message), {code, name})

describe('classify', () => {
  test('what undici or node:http2 refuse to send is the client\'s bad request: 400 DPE, no outcome (never retried, never ejects)', () => {
    for (const error of [
      coded('duplicate host header', 'UND_ERR_INVALID_ARG', 'InvalidArgumentError'),
      coded('expect header not supported', 'UND_ERR_NOT_SUPPORTED', 'NotSupportedError'),
      coded('Invalid value "\u0001" for header "x"', 'ERR_HTTP2_INVALID_HEADER_VALUE', 'TypeError'),
    ]) {
      const e = classify(error, live, endpoint)
      expect([e.status, e.flag, e.outcome], error.message).toEqual([400, 'DPE', undefined])
      expect(e.message).toContain(error.message)
    }
  })

  test('a malformed response is the instance\'s protocol error: 502 UPE, counted as a reset', () => {
    const e = classify(coded('Response does not match the HTTP/1.1 protocol (Invalid character in chunk size)', 'HPE_INVALID_CHUNK_SIZE', 'HTTPParserError'), live, endpoint)
    expect([e.status, e.flag, e.outcome]).toEqual([502, 'UPE', {kind: 'reset'}])
    expect(e.message).toContain('api-v1-0 sent a malformed response (Response does not match')
  })

  test('a refused connection is UF, a dropped one UC; a request aborted from above takes the abort\'s reason, whatever undici said', () => {
    expect(classify(coded('connect ECONNREFUSED', 'ECONNREFUSED'), live, endpoint).flag).toBe('UF')
    expect(classify(coded('other side closed', 'UND_ERR_SOCKET'), live, endpoint).flag).toBe('UC')
    const gone = new AbortController()
    gone.abort(new ProxyError(499, 'DC', 'the caller closed the connection'))
    const e = classify(coded('duplicate host header', 'UND_ERR_INVALID_ARG'), gone.signal, endpoint)
    expect([e.status, e.flag, e.outcome]).toEqual([499, 'DC', undefined])
  })
})
