// The active faults and the per-request decision: does this request, on this side
// of this hop, get this fault? Pure logic over a Clock and a seeded Random per
// fault: with the same seed, the same sequence of matching requests is hit.
//
//   fault layer ─match(side, service, version, request)─▶ FaultSet ─▶ [faults to apply]
//   control API ─add / remove / list─▶ FaultSet (expiry on the clock)
import type {Clock, Timer} from '../time/clock.js'
import {type Random, SeededRandom, seedFrom} from '../time/random.js'
import {type FaultInfo, type FaultSide, type FaultSpec, PER_REQUEST_KINDS} from './fault.js'

export interface FaultRequest {
  source: string
  path: string
  header(name: string): string | undefined
}

interface Active {
  info: FaultInfo
  random: Random
  timer?: Timer
}

const NONE: readonly FaultInfo[] = Object.freeze([])

export class FaultSet {
  private readonly active = new Map<string, Active>()
  /** Per side and service: the per-request faults, rebuilt on change so the request path only reads. */
  // Per side, then per service: no key string is built for the check every request makes.
  private index: Record<FaultSide, Map<string, FaultInfo[]>> = {caller: new Map(), callee: new Map()}
  private nextId = 1

  constructor(
    private readonly clock: Clock,
    private readonly onChange?: (kind: 'added' | 'removed' | 'expired', fault: FaultInfo) => void,
  ) {}

  add(spec: FaultSpec): FaultInfo {
    const id = `f${this.nextId++}`
    const now = this.clock.wallNow()
    const info: FaultInfo = {
      ...spec,
      at: spec.at ?? 'callee',
      percent: spec.percent ?? 100,
      id,
      seen: 0,
      hits: 0,
      createdAt: new Date(now).toISOString(),
      expiresAt: spec.durationMs !== undefined ? new Date(now + spec.durationMs).toISOString() : undefined,
    }
    // Unseeded faults still roll reproducible dice within a run: the seed comes from the id and time.
    const entry: Active = {info, random: new SeededRandom(spec.seed ?? seedFrom(id, now))}
    if (spec.durationMs !== undefined) {
      entry.timer = this.clock.setTimer(spec.durationMs, () => this.drop(id, 'expired'))
    }
    this.active.set(id, entry)
    this.reindex()
    this.onChange?.('added', info)
    return info
  }

  remove(id: string): FaultInfo | undefined {
    return this.drop(id, 'removed')
  }

  /** Removes by id, by service, or all (no argument); returns what was removed. */
  clear(selector?: {id?: string; service?: string}): FaultInfo[] {
    const out: FaultInfo[] = []
    for (const [id, a] of [...this.active]) {
      if (selector?.id && id !== selector.id) continue
      if (selector?.service && a.info.service !== selector.service) continue
      const removed = this.drop(id, 'removed')
      if (removed) out.push(removed)
    }
    return out
  }

  list(): FaultInfo[] {
    return [...this.active.values()].map((a) => ({...a.info}))
  }

  get(id: string): FaultInfo | undefined {
    return this.active.get(id)?.info
  }

  /** For records kept by process faults (which instances were killed or paused). */
  update(id: string, patch: Partial<FaultInfo>): void {
    const a = this.active.get(id)
    if (a) Object.assign(a.info, patch)
  }

  /** True when any per-request fault exists for this side and service (the cheap check on every request). */
  any(side: FaultSide, service: string): boolean {
    return this.index[side].has(service)
  }

  /**
   * The faults this request gets. Each candidate that matches the selectors counts
   * the request as seen, then decides by `first` or by its own seeded dice.
   */
  match(side: FaultSide, service: string, version: string | undefined, req: FaultRequest): FaultInfo[] {
    const candidates = this.index[side].get(service) ?? NONE
    let hit: FaultInfo[] | undefined
    for (const f of candidates) {
      if (f.version && version && f.version !== version) continue
      if (f.from && f.from !== req.source) continue
      if (f.pathPrefix && !req.path.startsWith(f.pathPrefix)) continue
      if (f.header && req.header(f.header.name.toLowerCase()) !== f.header.value) continue
      f.seen++
      let applies: boolean
      if (f.first !== undefined) applies = f.seen <= f.first
      else {
        const roll = this.active.get(f.id)!.random.next() * 100
        applies = roll < (f.percent ?? 100)
      }
      if (!applies) continue
      f.hits++
      ;(hit ??= []).push(f)
    }
    return hit ?? (NONE as FaultInfo[])
  }

  close(): void {
    for (const a of this.active.values()) a.timer?.cancel()
    this.active.clear()
    this.reindex()
  }

  private drop(id: string, why: 'removed' | 'expired'): FaultInfo | undefined {
    const a = this.active.get(id)
    if (!a) return undefined
    a.timer?.cancel()
    this.active.delete(id)
    this.reindex()
    this.onChange?.(why, a.info)
    return a.info
  }

  private reindex(): void {
    const index: Record<FaultSide, Map<string, FaultInfo[]>> = {caller: new Map(), callee: new Map()}
    for (const {info} of this.active.values()) {
      if (!PER_REQUEST_KINDS.includes(info.kind)) continue
      const bySide = index[info.at ?? 'callee']
      let list = bySide.get(info.service)
      if (!list) bySide.set(info.service, (list = []))
      list.push(info)
    }
    this.index = index
  }
}
