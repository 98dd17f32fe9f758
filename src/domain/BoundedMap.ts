/**
 * A map that holds at most `capacity` entries and, past it, forgets the oldest
 * (insertion order, first in first out). The settlement, the ledger, the clients
 * and the service each keep a bounded memory of this shape (known escrow parties,
 * cached API keys, task replies, replayed escrow ids...); it lives in the domain
 * because the domain is the one layer every other layer may import, and it
 * depends on nothing. Extra rules (time to live, what is worth remembering) stay
 * with the caller.
 */
export class BoundedMap<K, V> implements Iterable<[K, V]> {
  private readonly entries_ = new Map<K, V>()

  /**
   * @param capacity entries kept at most (at least 1).
   * @param options.touchOnSet when true, setting a key already held moves it to the
   *   newest place, so it is evicted last; otherwise it keeps its place.
   */
  constructor(
    readonly capacity: number,
    private readonly options: { readonly touchOnSet?: boolean } = {}
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`BoundedMap capacity must be a positive integer, got ${capacity}`)
    }
  }

  get size(): number {
    return this.entries_.size
  }

  get(key: K): V | undefined {
    return this.entries_.get(key)
  }

  has(key: K): boolean {
    return this.entries_.has(key)
  }

  /** Sets `key`; a new key past capacity evicts the oldest entry first. */
  set(key: K, value: V): this {
    if (this.entries_.has(key)) {
      if (this.options.touchOnSet === true) this.entries_.delete(key)
    } else if (this.entries_.size >= this.capacity) {
      this.entries_.delete(this.entries_.keys().next().value!)
    }
    this.entries_.set(key, value)
    return this
  }

  delete(key: K): boolean {
    return this.entries_.delete(key)
  }

  clear(): void {
    this.entries_.clear()
  }

  /** Keys, oldest first. */
  keys(): IterableIterator<K> {
    return this.entries_.keys()
  }

  /** Entries, oldest first. */
  entries(): IterableIterator<[K, V]> {
    return this.entries_.entries()
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries_.entries()
  }
}
