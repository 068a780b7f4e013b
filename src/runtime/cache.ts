/** A byte-budgeted LRU map (a JS Map keeps insertion order; a hit moves the entry to the end). */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; size: number }>();
  private used = 0;
  hits = 0;
  misses = 0;
  constructor(private budget: number) {}

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: K, value: V, size: number): void {
    if (size > this.budget) {
      this.delete(key);
      return;
    }
    const old = this.map.get(key);
    if (old) {
      this.used -= old.size;
      this.map.delete(key);
    }
    this.map.set(key, { value, size });
    this.used += size;
    if (this.used > this.budget) {
      for (const [k, e] of this.map) {
        if (this.used <= this.budget) break;
        this.map.delete(k);
        this.used -= e.size;
      }
    }
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (e) {
      this.used -= e.size;
      this.map.delete(key);
    }
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  get bytes(): number {
    return this.used;
  }
  get size(): number {
    return this.map.size;
  }
}
