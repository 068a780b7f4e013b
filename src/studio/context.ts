/**
 * What the studio's pages work with: the open store, the app's entities, the mode (read-only, reveal
 * allowed), and the untyped views of the repositories the pages call (the store's types are generic over
 * the app's entities; the studio walks any of them).
 */
import type { CollectionDefinition, EntityDefinition, KeyProvider, QueryExplain, StoreHandle, StoreStats } from "../runtime/index.js";
import { type NavEntity } from "./html.js";
import type { Session } from "./guard.js";

/** A collection as the studio calls it. */
export interface AnyCollection {
  get(key: unknown): Promise<unknown>;
  put(value: unknown): Promise<unknown>;
  delete(key: unknown): Promise<boolean>;
  count(where?: unknown): Promise<number>;
  queryPage(where: unknown, options: Record<string, unknown>): Promise<{ records: readonly unknown[]; cursor: string | undefined }>;
  toJson(record: unknown): unknown;
  explain(where: unknown, options?: Record<string, unknown>): QueryExplain;
}

/** A singleton as the studio calls it. */
export interface AnySingleton {
  get(): Promise<unknown>;
  update(patch: unknown): Promise<unknown>;
  reset(): Promise<void>;
  toJson(record: unknown): unknown;
}

/** A reveal of one sensitive field, for the audit log. */
export interface RevealEvent {
  /** The entity's storage name. */
  readonly entity: string;
  /** The record's key as the page shows it; absent for a singleton. */
  readonly key?: string;
  /** The sensitive field's path (`email`, `aiProvider.apiKey`). */
  readonly field: string;
}

export interface StudioOptions {
  /** The open store (the studio never closes it). */
  readonly store: StoreHandle<Record<string, EntityDefinition>>;
  /** The app's entities, by store property. */
  readonly entities: Record<string, EntityDefinition>;
  /** No edit, delete or reset. */
  readonly readOnly: boolean;
  /** Sensitive fields may be revealed one at a time (the store was opened with the keys of sensitive fields). */
  readonly canReveal: boolean;
  /** The key the store was opened with: verifying a store-key backup needs it. Never sent to the page. */
  readonly key?: KeyProvider;
  /** Called before a sensitive field is shown (the audit log's hook); a throw refuses the reveal. */
  readonly onReveal?: (e: RevealEvent) => void | Promise<void>;
  /** The schema lock (`schemas/cellar.lock/index.json`), for the health page; absent: not shown. */
  readonly lockFile?: string;
  /** Records per table page (default 50). */
  readonly pageSize?: number;
  /** Why the store is read-only, shown on the pages (e.g. "another process holds the store"). */
  readonly readOnlyReason?: string;
}

export class Studio {
  constructor(readonly o: StudioOptions) {}

  get readOnly(): boolean {
    return this.o.readOnly;
  }
  get pageSize(): number {
    return this.o.pageSize ?? 50;
  }

  def(prop: string): EntityDefinition | undefined {
    return Object.hasOwn(this.o.entities, prop) ? this.o.entities[prop] : undefined;
  }

  collection(prop: string): AnyCollection {
    return (this.o.store as unknown as Record<string, AnyCollection>)[prop]!;
  }

  singleton(prop: string): AnySingleton {
    return (this.o.store as unknown as Record<string, AnySingleton>)[prop]!;
  }

  /** The last `stats()`: computing it walks the journal's records (~0.5-1 s at 1,000,000), so pages reuse it. */
  private stats: StoreStats | null = null;

  /** The last stats (computed now if none). */
  currentStats(): StoreStats {
    return this.stats ?? this.refreshStats();
  }

  /**
   * Before the link is printed: the stats, and each collection's key order (the runtime sorts a collection's
   * keys on the first key-order page after open: ~2 s at 1,000,000 keys), so the first page is fast.
   */
  async warm(): Promise<void> {
    this.refreshStats();
    for (const [prop, def] of Object.entries(this.o.entities)) if (def.kind === "collection") await this.collection(prop).queryPage({}, { limit: 1 });
  }

  /** Recompute the store's stats (the overview and health pages do, once per visit). */
  refreshStats(): StoreStats {
    this.stats = this.o.store.stats();
    return this.stats;
  }

  /**
   * The sidebar: every entity with its version, its record count (`count()`, from the index: always
   * current) and its bytes (from the last stats, refreshed by the overview and health pages).
   */
  async nav(): Promise<NavEntity[]> {
    const stats = this.stats ?? this.refreshStats();
    const out: NavEntity[] = [];
    for (const [prop, def] of Object.entries(this.o.entities)) {
      const s = stats.entities[def.name];
      const records = def.kind === "collection" ? await this.collection(prop).count() : (s?.records ?? 0);
      out.push({ prop, name: def.name, kind: def.kind, version: def.version, records, bytes: (s?.liveBytes ?? 0) + (s?.deadBytes ?? 0) });
    }
    return out;
  }
}

/** A request as a page handler sees it. */
export interface Req {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly form: URLSearchParams;
  readonly session: Session;
}

/** A handler's answer: a page (HTML), or a redirect after a POST. */
export type Res = { readonly status?: number; readonly html: string } | { readonly redirect: string };

export function isCollection(def: EntityDefinition): def is CollectionDefinition {
  return def.kind === "collection";
}
