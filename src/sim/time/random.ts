// Seeded randomness. Every dice roll in a policy, a fault or a simulated service
// comes from a Random, so the same seed replays the same run.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [0, n). */
  int(n: number): number
  /** Standard normal deviate. */
  normal(): number
}

/** mulberry32: tiny, fast, and good enough for simulation (not for secrets). */
export class SeededRandom implements Random {
  private state: number
  private spare: number | undefined

  constructor(seed: number) {
    this.state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  normal(): number {
    // Box-Muller; the second deviate is kept so two calls cost one pair.
    if (this.spare !== undefined) {
      const s = this.spare
      this.spare = undefined
      return s
    }
    let u = 0
    while (u === 0) u = this.next()
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

/** A seed derived from a string (an instance name, say), so each instance gets its own stream. */
export function seedFrom(...parts: Array<string | number>): number {
  let h = 2166136261
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0)!
    h = Math.imul(h, 16777619)
  }
  return h >>> 0
}

/** murmur3's 32-bit finaliser: every input bit moves every output bit. */
export function fmix32(x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}
