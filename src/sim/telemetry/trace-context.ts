// W3C Trace Context (traceparent) parsing and id generation. The sidecars start a
// trace at the ingress when none arrives and give every hop its own span id.
import {randomFillSync} from 'node:crypto'

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

// Ids come from a pooled buffer: one getrandom call per 4 KB instead of per id.
const pool = Buffer.alloc(4096)
let offset = pool.length

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const hex = pool.toString('hex', offset, offset + bytes)
  offset += bytes
  return /^0+$/.test(hex) ? randomHex(bytes) : hex
}

export const newTraceId = (): string => randomHex(16)
export const newSpanId = (): string => randomHex(8)
