// W3C Trace Context (traceparent) parsing and id generation. The sidecars start a
// trace at the ingress when none arrives and give every hop its own span id.
import {randomFillSync} from 'node:crypto'
import {hexOf, latin1Of} from '../buffer-slices.js'

export interface TraceContext {
  traceId: string
  /** The span that is the parent of whatever receives this context. */
  parentId: string
  flags: string
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/** Undefined for anything invalid: the caller then starts a new trace (as the spec says). */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  if (!value) return undefined
  const m = TRACEPARENT.exec(value.trim())
  if (!m) return undefined
  const [, version, traceId, parentId, flags, rest] = m
  if (version === 'ff') return undefined
  if (version === '00' && rest !== undefined) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined
  return {traceId, parentId, flags}
}

export function formatTraceparent(ctx: TraceContext): string {
  return `00-${ctx.traceId}-${ctx.parentId}-${ctx.flags}`
}

// Ids are cut from a pooled random buffer (one getrandom call per ~250 ids), each one
// hex-encoded on its own (buffer-slices.ts). Not slices of one long hex string: a
// slice keeps its whole parent alive, so every sampled span in the trace store held a
// 8 KB pool string (measured: ~4.6 KB retained per stored span).
const pool = Buffer.alloc(4096)
let offset = pool.length
const ZEROS: Record<number, string> = {16: '0'.repeat(16), 32: '0'.repeat(32)}

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const id = hexOf(pool, offset, offset + bytes)
  offset += bytes
  // All zeros is the spec's invalid id.
  return id === ZEROS[bytes * 2] ? randomHex(bytes) : id
}

export const newTraceId = (): string => randomHex(16)
export const newSpanId = (): string => randomHex(8)

// x-request-id values (UUID v4, as Envoy sets them), written 64 at a time into one buffer
// and read out one by one: crypto.randomUUID() builds each id from ~20 concatenated pieces.
const UUIDS_PER_BATCH = 64
const HEX = Buffer.from('0123456789abcdef')
const uuids = Buffer.alloc(36 * UUIDS_PER_BATCH)
const uuidRandom = Buffer.alloc(16 * UUIDS_PER_BATCH)
let uuidOffset = uuids.length

export function newRequestId(): string {
  if (uuidOffset === uuids.length) {
    fillUuids()
    uuidOffset = 0
  }
  const id = latin1Of(uuids, uuidOffset, uuidOffset + 36)
  uuidOffset += 36
  return id
}

function fillUuids(): void {
  const random = randomFillSync(uuidRandom)
  let o = 0
  for (let i = 0; i < random.length; i++) {
    let b = random[i]
    const n = i % 16
    if (n === 6) b = (b & 0x0f) | 0x40 // version 4
    else if (n === 8) b = (b & 0x3f) | 0x80 // RFC 4122 variant
    uuids[o++] = HEX[b >> 4]
    uuids[o++] = HEX[b & 0x0f]
    if (n === 3 || n === 5 || n === 7 || n === 9) uuids[o++] = 0x2d // '-'
  }
}

/**
 * B3 propagation (Zipkin), single (`b3: {trace}-{span}-{sampled}-{parent}`) or
 * multi header (`x-b3-traceid`, …). Accepted when no valid traceparent arrives;
 * a 64-bit trace id is left-padded to 128 bits, as OpenTelemetry does.
 */
export function parseB3(header: (name: string) => string | undefined): TraceContext | undefined {
  const single = header('b3')
  let traceId: string | undefined
  let spanId: string | undefined
  let sampled: string | undefined
  if (single && single !== '0' && single !== '1' && single !== 'd') {
    ;[traceId, spanId, sampled] = single.trim().split('-')
  } else {
    traceId = header('x-b3-traceid')
    spanId = header('x-b3-spanid')
    sampled = header('x-b3-flags') === '1' ? 'd' : header('x-b3-sampled')
  }
  if (!traceId || !spanId || !/^([0-9a-f]{16}|[0-9a-f]{32})$/.test(traceId) || !/^[0-9a-f]{16}$/.test(spanId)) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return {traceId: traceId.padStart(32, '0'), parentId: spanId, flags: sampled === '0' ? '00' : '01'}
}

/** Rewrites B3 headers the app sent, so they name this hop's span as W3C traceparent does. */
export function forwardB3(headers: Record<string, string | string[]>, traceId: string, spanId: string, parentId: string, flags: string): void {
  const sampled = flags === '00' ? '0' : '1'
  if (headers['b3'] !== undefined) headers['b3'] = `${traceId}-${spanId}-${sampled}-${parentId}`
  if (headers['x-b3-traceid'] !== undefined) {
    // Keep the app's id width: a 64-bit B3 trace id stays 64-bit.
    const width = String(headers['x-b3-traceid']).length
    headers['x-b3-traceid'] = width === 16 ? traceId.slice(16) : traceId
    headers['x-b3-spanid'] = spanId
    headers['x-b3-parentspanid'] = parentId
    headers['x-b3-sampled'] = sampled
  }
}
