/**
 * A byte-budgeted cache with CLOCK (second-chance) eviction, an approximation of LRU: a Map for lookup and a
 * list in insertion order. A hit only marks its entry; eviction walks from the oldest entry, giving a marked
 * one a second chance (unmarked, moved to the newest end) and removing the first unmarked one. A hit then
 * touches one entry instead of relinking three (on a warm 100k-record working set the relinking was ~0.5 µs
 * of each get, in cache misses). (Evicting by iterating the Map from its oldest entry looked O(1) but is not
 * in V8: an iterator skips every deleted slot left at the front of the table, which made a full cache cost
 * microseconds per insert.)
 *
 * Keys live in spaces (the record cache uses one per entity), so that a lookup hashes the caller's own key
 * string, never a concatenation built per call (that cost ~1 µs of a ~3 µs warm get).
 */
interface Node<K, V> {
  key: K;
  value: V;
  size: number;
  /** Used since it was last considered for eviction. */
  ref: boolean;
  map: Map<K, Node<K, V>>;
  prev: Node<K, V> | null;
  next: Node<K, V> | null;
}

export class LruCache<K, V> {
  private readonly spaces = new Map<string, Map<K, Node<K, V>>>();
  private readonly map = new Map<K, Node<K, V>>();
  /** Least recently used. */
  private head: Node<K, V> | null = null;
  /** Most recently used. */
  private tail: Node<K, V> | null = null;
  private used = 0;
  /** Bytes of the entries in the default space (the engine's blocks, when the store shares the cache). */
  private defaultUsed = 0;
  hits = 0;
  misses = 0;
  constructor(private readonly budget: number) {}

  private space(name: string | undefined): Map<K, Node<K, V>> {
    if (name === undefined) return this.map;
    let m = this.spaces.get(name);
    if (!m) this.spaces.set(name, (m = new Map()));
    return m;
  }

  get(key: K, space?: string): V | undefined {
    const n = (space === undefined ? this.map : this.spaces.get(space))?.get(key);
    if (!n) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    n.ref = true;
    return n.value;
  }

  /** Whether `key` is cached, without counting a hit or a miss or marking it used. */
  has(key: K, space?: string): boolean {
    return (space === undefined ? this.map : this.spaces.get(space))?.has(key) === true;
  }

  set(key: K, value: V, size: number, space?: string): void {
    const map = this.space(space);
    const old = map.get(key);
    if (old) {
      this.unlink(old);
      map.delete(key);
      this.account(old, -1);
    }
    if (size > this.budget) return;
    const n: Node<K, V> = { key, value, size, ref: false, map, prev: null, next: null };
    map.set(key, n);
    this.append(n);
    this.account(n, 1);
    while (this.used > this.budget && this.head) {
      const h = this.head;
      this.unlink(h);
      // A used entry gets a second chance; the new one is never what makes room for itself.
      if (h.ref || h === n) {
        h.ref = false;
        this.append(h);
        continue;
      }
      h.map.delete(h.key);
      this.account(h, -1);
    }
  }

  delete(key: K, space?: string): void {
    const map = space === undefined ? this.map : this.spaces.get(space);
    const n = map?.get(key);
    if (n) {
      this.unlink(n);
      map!.delete(key);
      this.account(n, -1);
    }
  }

  clear(): void {
    this.map.clear();
    this.spaces.clear();
    this.head = this.tail = null;
    this.used = 0;
    this.defaultUsed = 0;
  }

  /** Remove every entry of the default space (keys given without a space); other spaces keep theirs. */
  clearDefaultSpace(): void {
    for (const n of this.map.values()) {
      this.unlink(n);
      this.account(n, -1);
    }
    this.map.clear();
  }

  get bytes(): number {
    return this.used;
  }

  /** Bytes held in the default space (keys given without a space). */
  get defaultSpaceBytes(): number {
    return this.defaultUsed;
  }

  private account(n: Node<K, V>, sign: 1 | -1): void {
    this.used += sign * n.size;
    if (n.map === this.map) this.defaultUsed += sign * n.size;
  }
  get size(): number {
    let n = this.map.size;
    for (const m of this.spaces.values()) n += m.size;
    return n;
  }

  private unlink(n: Node<K, V>): void {
    if (n.prev) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = n.next = null;
  }

  private append(n: Node<K, V>): void {
    n.prev = this.tail;
    if (this.tail) this.tail.next = n;
    else this.head = n;
    this.tail = n;
  }
}
