// Who sets a version's instance count while a deploy runs on an autoscaled service: the
// deploy or the autoscaler, never both. A strategy holds a version while it creates or
// removes it as a whole, or while its own arithmetic depends on the count; in between it
// hands the version back and the autoscaler scales each version by its own load, so a
// version's traffic share decides its size (as Knative scales each Revision of a traffic
// split with its own KPA). A version a deploy took away for good is retired: the autoscaler
// lets its decider go, until a deploy brings it back or `mesh apply` makes mesh.yaml's
// versions what stands.
//
//   rolling     holds old and new for the whole rollout (their instance counts are the traffic split)
//   blue-green  holds green until the switch (it has no traffic to scale on yet), then blue
//               until it is stopped (kept whole, so a rollback is instant); green is scaled from the switch on
//   canary      holds the canary while creating it and while sizing it to take 100%, and the
//               primary while stopping it; at every weight in between both are autoscaled
//   restart     holds the versions it restarts
//   rollback    holds the new version while removing it, then retires it
//
// The autoscaler asks `owner` on every tick and decides nothing for a held version; the
// deploy acts on what it holds only once a scaling action already under way on the service
// has ended (deploy-target.ts), so neither undoes the other.
// When a version is handed back, it gets a fresh decider from the instances the deploy
// left (scaling/autoscaler.ts sync), told by `onChange`.

/** 'deploy': a deploy sets the count now; 'retired': a deploy took the version away. Undefined: the autoscaler owns it. */
export type CountOwner = 'deploy' | 'retired'

export class ScaleOwners {
  /** `service/version` → holds open (a strategy and a rollback may both hold one). */
  private readonly holds = new Map<string, number>()
  private readonly retired = new Set<string>()
  private readonly listeners = new Set<() => void>()

  /** The deploy sets these versions' counts until the returned release (which may be called more than once). A retired version held again is back. */
  hold(service: string, versions: string[]): () => void {
    const keys = versions.map((v) => key(service, v))
    for (const k of keys) {
      this.holds.set(k, (this.holds.get(k) ?? 0) + 1)
      this.retired.delete(k)
    }
    this.changed()
    let released = false
    return () => {
      if (released) return
      released = true
      for (const k of keys) {
        const n = (this.holds.get(k) ?? 1) - 1
        if (n > 0) this.holds.set(k, n)
        else this.holds.delete(k)
      }
      this.changed()
    }
  }

  /** These versions serve no more (a promoted deploy's old ones, a rolled-back new one). */
  retire(service: string, versions: string[]): void {
    for (const v of versions) this.retired.add(key(service, v))
    this.changed()
  }

  /** `mesh apply`: mesh.yaml's versions are what stands; one a deploy retired is scaled again like any other. */
  forgetRetired(): void {
    if (this.retired.size === 0) return
    this.retired.clear()
    this.changed()
  }

  owner(service: string, version: string): CountOwner | undefined {
    const k = key(service, version)
    if (this.holds.has(k)) return 'deploy'
    return this.retired.has(k) ? 'retired' : undefined
  }

  /** Told after every hold, release and retirement. Returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private changed(): void {
    for (const l of this.listeners) l()
  }
}

const key = (service: string, version: string) => `${service}/${version}`
