// Where the data path hands its spans: the daemon's Telemetry (trace store, metrics,
// access logs, OTLP push) or nothing. The data path only hands over plain objects
// (no formatting, no I/O); one Span per hop side, recorded once, never copied.
import type {Span} from '../telemetry/span.js'

export interface TelemetrySink {
  record(span: Span): void
}

export const discardTelemetry: TelemetrySink = {record: () => undefined}
