// `mesh tap`'s line for one request: the access log's layout (access-log.ts), with the
// serving instance as the destination when there was one.
import type {ChalkInstance} from 'chalk'
import {requestLine} from './access-log.js'
import {describeGrpcStatus} from '../sim/proxy/grpc.js'
import type {TapEvent} from '../sim/telemetry/tap.js'

export function renderTapEvent(e: TapEvent, c: ChalkInstance): string {
  return requestLine(
    {
      time: new Date(e.at).toISOString(),
      traceId: e.traceId,
      source: e.source,
      destination: e.instance ?? e.destination,
      method: e.method,
      path: e.path,
      status: e.status,
      durationMs: e.durationMs,
      flags: e.flags,
      cause: e.cause,
      note: [e.grpcStatus !== undefined ? `grpc ${describeGrpcStatus(e.grpcStatus)}` : '', e.attempts ? `${e.attempts} tries` : ''].filter(Boolean).join(', ') || undefined,
    },
    c,
  )
}

/** How the tap ends: by itself after --count or --duration when given, and Ctrl-C always. */
export function describeEnd(count: number | undefined, duration: string | undefined): string {
  const limits = [count !== undefined && `${count} request${count === 1 ? '' : 's'}`, duration].filter(Boolean)
  return limits.length ? `stops after ${limits.join(' or ')} (or Ctrl-C)` : 'Ctrl-C stops'
}
