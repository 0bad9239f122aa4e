// A map that keeps at most `capacity` entries, dropping the least recently used one
// to make room: for state kept per client-chosen key (a rate limit's consumers), where
// a flood of distinct keys must not grow the process. A hit moves its entry to the
// front of a doubly linked list, so every operation is O(1) and touches no Map order.

interface Entry<K, V> {
  key: K
  value: V
  /** Towards the most recently used end. */
  newer: Entry<K, V> | undefined
  /** Towards the least recently used end. */
  older: Entry<K, V> | undefined
}

export class LruMap<K, V> {
  private readonly entries = new Map<K, Entry<K, V>>()
  private newest: Entry<K, V> | undefined
  private oldest: Entry<K, V> | undefined

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`an LRU map holds at least one entry, got capacity ${capacity}`)
  }

  get size(): number {
    return this.entries.size
  }

  /** The value, which becomes the most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.touch(entry)
    return entry.value
  }

  /** Sets the value as the most recently used; returns the entry evicted to make room, if any. */
  set(key: K, value: V): [K, V] | undefined {
    const entry = this.entries.get(key)
    if (entry !== undefined) {
      entry.value = value
      this.touch(entry)
      return undefined
    }
    let evicted: [K, V] | undefined
    if (this.entries.size >= this.capacity) {
      const victim = this.oldest!
      this.unlink(victim)
      this.entries.delete(victim.key)
      evicted = [victim.key, victim.value]
    }
    const fresh: Entry<K, V> = {key, value, newer: undefined, older: undefined}
    this.entries.set(key, fresh)
    this.linkNewest(fresh)
    return evicted
  }

  delete(key: K): boolean {
    const entry = this.entries.get(key)
    if (entry === undefined) return false
    this.unlink(entry)
    return this.entries.delete(key)
  }

  /** Keys from the least to the most recently used (the order they would be evicted in). */
  *keys(): IterableIterator<K> {
    for (let e = this.oldest; e !== undefined; e = e.newer) yield e.key
  }

  private touch(entry: Entry<K, V>): void {
    if (entry === this.newest) return
    this.unlink(entry)
    this.linkNewest(entry)
  }

  private linkNewest(entry: Entry<K, V>): void {
    entry.older = this.newest
    entry.newer = undefined
    if (this.newest) this.newest.newer = entry
    this.newest = entry
    this.oldest ??= entry
  }

  private unlink(entry: Entry<K, V>): void {
    if (entry.older) entry.older.newer = entry.newer
    else this.oldest = entry.newer
    if (entry.newer) entry.newer.older = entry.older
    else this.newest = entry.older
    entry.newer = entry.older = undefined
  }
}
