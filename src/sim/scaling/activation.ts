// What the activator (on the data path: it holds requests a version has no free instance
// for) and the autoscaler (the control loop that starts and stops instances) say to each
// other, as Knative's activator and autoscaler do:
//
//   activator ──poke(service, version)──▶ autoscaler   a request is held: scale from zero now, not at the next tick
//   activator ◀──held(service, version)── autoscaler   held requests count as concurrency (the activator's metric report)
//   activator ◀──startFailed(…, reason)── autoscaler   the cold start failed: answer the held requests 503 with why
//
// Neither side imports the other; the daemon makes one hub and gives it to both.

export type PokeListener = (service: string, version: string) => void
export type StartFailedListener = (service: string, version: string, reason: string) => void

export class ActivationHub {
  private readonly pokes = new Set<PokeListener>()
  private readonly failures = new Set<StartFailedListener>()
  private heldBy: (service: string, version: string) => number = () => 0

  /** Activator: a request is being held for `service`/`version` (no instance, or none with a free slot). */
  poke(service: string, version: string): void {
    for (const l of this.pokes) l(service, version)
  }

  /** Autoscaler: listens for pokes. Returns the unsubscribe. */
  onPoke(listener: PokeListener): () => void {
    this.pokes.add(listener)
    return () => this.pokes.delete(listener)
  }

  /** Activator: how it answers `held` (one activator per daemon). */
  reportHeld(fn: (service: string, version: string) => number): void {
    this.heldBy = fn
  }

  /** Autoscaler: requests held for the version now; they are demand its instances do not see yet. */
  held(service: string, version: string): number {
    return this.heldBy(service, version)
  }

  /** Autoscaler: starting instances for the version failed (never healthy, exited); `reason` says why, with the last log lines when known. */
  startFailed(service: string, version: string, reason: string): void {
    for (const l of this.failures) l(service, version, reason)
  }

  /** Activator: listens for failed starts. Returns the unsubscribe. */
  onStartFailed(listener: StartFailedListener): () => void {
    this.failures.add(listener)
    return () => this.failures.delete(listener)
  }
}
