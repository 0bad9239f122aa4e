// Ring hash (consistent hashing, as Envoy's RING_HASH / ketama): each endpoint owns
// VNODES points on a 32-bit ring; a request's hash key goes to the first point at or
// after its own hash. Removing one of N endpoints only frees that endpoint's points,
// so only its keys (≈1/N) move; every other key keeps its endpoint.
//
// The ring is built only when the candidate set changes (cached by a membership
// signature); a pick is one string hash and a binary search. Without a hash key
// (header or cookie absent) the pick is random, as Envoy does.
import {fmix32, type Random} from '../../time/random.js'
import type {Balancer, PickContext} from './balancer.js'
import {pickRandom} from './random.js'

/** Points per endpoint: 100 keeps the load within a few percent of even for small N (Envoy defaults to 1024 per ring min). */
export const VNODES = 100

/** FNV-1a over UTF-16 code units, then murmur3's fmix32 so near-identical strings ("a_1", "a_2") spread over the ring. */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

export class RingHashBalancer<T> implements Balancer<T> {
  // The ring: sorted point hashes and, for each, the index of its owner in `members`.
  private points = new Uint32Array(0)
  private owners = new Int32Array(0)
  /** Member keys, sorted; their joined form is the signature the ring was built for. */
  private members: string[] = []
  private signature = ''
  /** member index → index in the candidate list last seen. */
  private memberToCandidate = new Int32Array(0)
  /** The candidate list last seen, element by element, to notice changes without hashing. */
  private seen: T[] = []
  /** How many rings were built (tests check that an unchanged set never rebuilds). */
  builds = 0

  constructor(
    private readonly random: Random,
    private readonly key: (t: T) => string,
    private readonly vnodes = VNODES,
  ) {}

  pick(candidates: readonly T[], ctx?: PickContext): T | undefined {
    const n = candidates.length
    if (n === 0) return undefined
    if (ctx?.hashKey === undefined) return pickRandom(candidates, ctx, this.random, this.key)
    if (n === 1) return candidates[0]
    if (!this.sameAsSeen(candidates)) this.sync(candidates)

    const start = this.lowerBound(hash32(ctx.hashKey))
    const first = this.owners[start]
    const exclude = ctx.exclude
    if (exclude === undefined || exclude.size === 0 || !exclude.has(this.members[first])) {
      return candidates[this.memberToCandidate[first]]
    }
    // A retry walks on round the ring to the next endpoint not tried yet, so it is
    // still a stable choice for this key.
    const len = this.points.length
    for (let step = 1; step < len; step++) {
      const owner = this.owners[(start + step) % len]
      if (!exclude.has(this.members[owner])) return candidates[this.memberToCandidate[owner]]
    }
    return candidates[this.memberToCandidate[first]]
  }

  /** A member that left: the ring is dropped, and the next pick builds one for the endpoints there are. */
  forget(key: string): void {
    if (!this.members.includes(key)) return
    this.points = new Uint32Array(0)
    this.owners = new Int32Array(0)
    this.members = []
    this.signature = ''
    this.memberToCandidate = new Int32Array(0)
    this.seen = []
  }

  tracked(): number {
    return this.members.length
  }

  /** First point with hash >= h, wrapping to 0. */
  private lowerBound(h: number): number {
    const points = this.points
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid] < h) lo = mid + 1
      else hi = mid
    }
    return lo === points.length ? 0 : lo
  }

  private sameAsSeen(candidates: readonly T[]): boolean {
    const seen = this.seen
    if (seen.length !== candidates.length) return false
    for (let i = 0; i < seen.length; i++) if (seen[i] !== candidates[i]) return false
    return true
  }

  private sync(candidates: readonly T[]): void {
    this.seen = candidates.slice()
    const keys = candidates.map(this.key)
    const sorted = [...keys].sort()
    const signature = sorted.join('\u0000')
    if (signature !== this.signature) this.build(sorted, signature)
    const index = new Map<string, number>()
    keys.forEach((k, i) => index.set(k, i))
    this.memberToCandidate = Int32Array.from(this.members, (m) => index.get(m)!)
  }

  private build(members: string[], signature: string): void {
    this.builds++
    const total = members.length * this.vnodes
    const hashes = new Uint32Array(total)
    const owner = new Int32Array(total)
    const order = new Uint32Array(total)
    for (let m = 0, p = 0; m < members.length; m++) {
      for (let v = 0; v < this.vnodes; v++, p++) {
        hashes[p] = hash32(`${members[m]}_${v}`)
        owner[p] = m
        order[p] = p
      }
    }
    // Ties (rare) go to the lower member key, so the ring depends only on the set.
    order.sort((a, b) => hashes[a] - hashes[b] || owner[a] - owner[b])
    this.points = Uint32Array.from(order, (p) => hashes[p])
    this.owners = Int32Array.from(order, (p) => owner[p])
    this.members = members
    this.signature = signature
  }
}
