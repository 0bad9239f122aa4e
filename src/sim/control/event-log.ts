// The daemon's recent events (crashes, ejections, config changes, later faults and
// deploy steps), a bounded ring that `mesh status --json` and `mesh top` read.

export interface Stamped<T> {
  seq: number
  at: string
  event: T
}

export class EventLog<T> {
  private readonly items: Stamped<T>[] = []
  private seq = 0

  constructor(private readonly capacity: number) {}

  push(event: T, wallMs: number): Stamped<T> {
    const stamped = {seq: ++this.seq, at: new Date(wallMs).toISOString(), event}
    this.items.push(stamped)
    if (this.items.length > this.capacity) this.items.shift()
    return stamped
  }

  /** Events after sequence number `seq` (0 = all kept). */
  since(seq: number): Stamped<T>[] {
    return this.items.filter((e) => e.seq > seq)
  }
}
