import {describe, expect, test} from 'vitest'
import {describeGrpcStatus, grpcMessage, grpcStatusIn, grpcStatusOfReply, grpcTimeoutMs, httpStatusOfGrpc, isGrpcRequest, outcomeStatus} from '../../src/sim/proxy/grpc.js'

describe('gRPC statuses', () => {
  test('count as the HTTP status Envoy maps them to: below 500 is a success, as for HTTP', () => {
    expect([0, 1, 2, 3, 4, 5, 8, 12, 13, 14, 16].map(httpStatusOfGrpc)).toEqual([200, 499, 500, 400, 504, 404, 429, 501, 500, 503, 401])
    expect(httpStatusOfGrpc(99)).toBe(500)
    expect(outcomeStatus({status: 200, grpcStatus: 14})).toBe(503)
    expect(outcomeStatus({status: 200})).toBe(200)
    expect(outcomeStatus({status: 502})).toBe(502)
  })

  test("the mesh's own replies as gRPC statuses: a timeout is DEADLINE_EXCEEDED, a rate limit RESOURCE_EXHAUSTED, the rest by gRPC's HTTP mapping", () => {
    expect(grpcStatusOfReply(504, 'UT')).toBe(4)
    expect(grpcStatusOfReply(429, 'RL')).toBe(8)
    expect(grpcStatusOfReply(503, 'UH')).toBe(14)
    expect(grpcStatusOfReply(503, 'UO')).toBe(14)
    // An authorization refusal, as Envoy's RBAC filter answers a gRPC call.
    expect(grpcStatusOfReply(403, 'RBAC')).toBe(7)
    expect(grpcStatusOfReply(502, 'UF')).toBe(14)
    expect(grpcStatusOfReply(404, 'NR')).toBe(12)
    expect(grpcStatusOfReply(500, 'FI')).toBe(2)
    expect(grpcStatusOfReply(403, 'FI')).toBe(7)
    expect(describeGrpcStatus(14)).toBe('14 UNAVAILABLE')
  })

  test('a call is gRPC by its content type; its status is read from a header list in any case', () => {
    expect(isGrpcRequest({'content-type': 'application/grpc'})).toBe(true)
    expect(isGrpcRequest({'content-type': 'application/grpc+proto'})).toBe(true)
    expect(isGrpcRequest({'content-type': 'application/json'})).toBe(false)
    expect(isGrpcRequest({})).toBe(false)
    expect(grpcStatusIn(['content-type', 'application/grpc', 'Grpc-Status', '14'])).toBe(14)
    expect(grpcStatusIn(['grpc-status', 'nonsense'])).toBe(2)
    expect(grpcStatusIn(['content-type', 'application/grpc'])).toBeUndefined()
    expect(grpcStatusIn(undefined)).toBeUndefined()
  })

  test('grpc-message is percent-encoded UTF-8', () => {
    expect(grpcMessage('no healthy upstream: 100% down')).toBe('no healthy upstream: 100%25 down')
    expect(grpcMessage('café\n')).toBe('caf%C3%A9%0A')
  })

  test('grpc-timeout: every unit, in whole ms (at least 1); a malformed value is ignored', () => {
    expect([grpcTimeoutMs('2H'), grpcTimeoutMs('3M'), grpcTimeoutMs('5S'), grpcTimeoutMs('250m')]).toEqual([7_200_000, 180_000, 5000, 250])
    expect([grpcTimeoutMs('999871u'), grpcTimeoutMs('1500000n'), grpcTimeoutMs('1n'), grpcTimeoutMs('0m')]).toEqual([1000, 2, 1, 1])
    expect([grpcTimeoutMs('99999999S'), grpcTimeoutMs('123456789S')]).toEqual([99_999_999_000, undefined])
    for (const bad of [undefined, '', 'S', '5', '5s', '5 S', '-5S', '1.5S', ['5S']]) expect(grpcTimeoutMs(bad), String(bad)).toBeUndefined()
  })
})
