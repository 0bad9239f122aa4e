// What the data path reports about each hop. The daemon turns these into spans and
// metrics; the data path only hands over plain objects (no formatting, no I/O).
import type {RoutingDecision} from './stack.js'

export interface HopRecord {
  /** client: the caller's outbound side (one per call); server: the callee's inbound side (one per attempt). */
  kind: 'client' | 'server'
  traceId: string
  spanId: string
  parentId?: string
  source: string
  sourceVersion?: string
  sourceInstance?: string
  destination: string
  destinationVersion?: string
  destinationInstance?: string
  method: string
  path: string
  /** 0 when no response came back (reset). */
  status: number
  /** Wall-clock epoch ms. */
  startMs: number
  durationMs: number
  attempt?: number
  flags?: string
  cause?: string
  decision?: RoutingDecision
}

export interface TelemetrySink {
  record(hop: HopRecord): void
}

export const discardTelemetry: TelemetrySink = {record: () => undefined}
