// Connection counters for `protocol: tcp` services, with Istio's TCP metric names
// (istio_tcp_connections_opened_total, _closed_total, istio_tcp_sent_bytes_total,
// istio_tcp_received_bytes_total). A TCP connection is no request: it stays out of
// `mesh stat`'s request rates and latencies and out of the trace store.

/** One caller → instance edge of TCP connections. */
export interface TcpEdge {
  source: string
  sourceVersion?: string
  destination: string
  destinationVersion: string
  destinationInstance: string
}

export interface TcpSeries {
  edge: TcpEdge
  opened: number
  closed: number
  /** Bytes the instance sent to the caller. */
  sentBytes: number
  /** Bytes the caller sent to the instance. */
  receivedBytes: number
}

export interface TcpTotals {
  open: number
  opened: number
  sentBytes: number
  receivedBytes: number
}

export class TcpMetrics {
  private readonly byEdge = new Map<string, TcpSeries>()

  opened(edge: TcpEdge): void {
    this.seriesOf(edge).opened++
  }

  closed(edge: TcpEdge, sentBytes: number, receivedBytes: number): void {
    const s = this.seriesOf(edge)
    s.closed++
    s.sentBytes += sentBytes
    s.receivedBytes += receivedBytes
  }

  series(): TcpSeries[] {
    return [...this.byEdge.values()]
  }

  /** One service's connections since the mesh started, from every caller to every instance. */
  ofService(service: string): TcpTotals {
    const t: TcpTotals = {open: 0, opened: 0, sentBytes: 0, receivedBytes: 0}
    for (const s of this.byEdge.values()) {
      if (s.edge.destination !== service) continue
      t.opened += s.opened
      t.open += s.opened - s.closed
      t.sentBytes += s.sentBytes
      t.receivedBytes += s.receivedBytes
    }
    return t
  }

  private seriesOf(edge: TcpEdge): TcpSeries {
    const key = `${edge.source}\u0000${edge.sourceVersion ?? ''}\u0000${edge.destinationInstance}`
    let s = this.byEdge.get(key)
    if (!s) this.byEdge.set(key, (s = {edge, opened: 0, closed: 0, sentBytes: 0, receivedBytes: 0}))
    return s
  }
}
