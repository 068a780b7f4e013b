/**
 * Which operations of the store the audit log records, and what each entry says (never a value: names,
 * counts, files, key ids). `auditOperations` replaces each of these methods on one store object by a
 * function that runs the method and then appends its entry, with `failed: <code>` when it threw
 * (typed/audit.ts appends; docs/FORMAT.md, "Audit log", lists the details).
 */
import path from "node:path";
import { CellarError } from "../errors.js";
import type { AuditAction } from "../format/audit.js";
import type { AuditEvent } from "../storage/audit-log.js";

type Describe = (args: readonly unknown[], result: unknown) => { action: AuditAction; detail: Record<string, unknown>; count?: number; entity?: string };

const opt = (args: readonly unknown[]) => (args[0] ?? {}) as Record<string, unknown>;
const files = (f: unknown) => (Array.isArray(f) ? f.map(String) : [String(f)]);
const sum = (r: unknown) => Object.values((r ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);

/** Per audited method: the entry it makes from its arguments and (when it succeeded) its result. */
export const AUDITED: Readonly<Record<string, Describe>> = {
  export: (a, r) => {
    const o = opt(a);
    const res = r as { records?: Record<string, number>; redacted?: boolean } | undefined;
    return {
      action: "export",
      count: sum(res?.records),
      detail: { file: String(o.to), includeSensitive: o.includeSensitive === true, ...(o.entities ? { entities: o.entities } : {}), ...(res ? { redacted: res.redacted } : {}) },
    };
  },
  import: (a, r) => {
    const res = r as { written?: number; deleted?: number } | undefined;
    return { action: "import", detail: { file: String(a[0]), mode: String(opt(a.slice(1)).mode ?? "merge"), ...(res ? { written: res.written, deleted: res.deleted } : {}) } };
  },
  backup: (a, r) => {
    const o = opt(a);
    const res = r as { file?: string } | undefined;
    return {
      action: "backup",
      detail: {
        file: res?.file ?? path.resolve(String(o.to)),
        protection: o.password !== undefined ? "password" : "store-key",
        includeSensitive: o.includeSensitive !== false,
        ...(o.entities ? { entities: o.entities } : {}),
      },
    };
  },
  rotateKey: (_a, r) => ({ action: "rotate-key", detail: r === undefined ? {} : { keyId: r } }),
  reencrypt: (_a, r) => ({ action: "reencrypt", detail: r === undefined ? {} : { destroyedKeyIds: r } }),
  changeMasterKey: (a) => ({ action: "change-master-key", detail: { kind: String((a[0] as { kind?: unknown } | undefined)?.kind) } }),
  recoverFrom: (a, r) => {
    const res = r as { restored?: Record<string, number>; missing?: unknown[] } | undefined;
    return { action: "recover", count: sum(res?.restored), detail: { files: files(a[0]), ...(res ? { missing: res.missing?.length ?? 0 } : {}) } };
  },
};

/**
 * A singleton's `export()` / `import(data)` (singleton.ts): the text stays in the app, so the entry names the
 * entity instead of a file.
 */
export const SINGLETON_AUDITED = (entity: string): Readonly<Record<string, Describe>> => ({
  export: (a) => ({ action: "export", entity, detail: { includeSensitive: (a[0] as { includeSensitive?: unknown } | undefined)?.includeSensitive === true } }),
  import: () => ({ action: "import", entity, detail: { mode: "replace" } }),
});

/**
 * `repo.archive(options)` (archive.ts's `Archives.archive(def, options)`): records moved out of the store into
 * a file, an `export` with `archive: true` (and, unlike `store.export`, their sensitive fields, still sealed).
 */
export const ARCHIVE_AUDITED: Readonly<Record<string, Describe>> = {
  archive: (a, r) => {
    const o = (a[1] ?? {}) as Record<string, unknown>;
    const res = r as { count?: number; file?: string | null; kept?: number } | undefined;
    return {
      action: "export",
      entity: String((a[0] as { name?: unknown } | undefined)?.name),
      ...(res ? { count: res.count ?? 0 } : {}),
      detail: {
        archive: true,
        ...(res ? { file: res.file ?? null, kept: res.kept ?? 0 } : o.to !== undefined ? { file: path.resolve(String(o.to)) } : {}),
        protection: o.password !== undefined ? "password" : "store-key",
        includeSensitive: true,
      },
    };
  },
};

/**
 * Replace each audited method of `store` (and its singletons' `export`/`import`, and the `archive` of its
 * archive runner, archive.ts) by one that records it through `record`.
 */
export function auditOperations(
  store: object,
  record: (e: Omit<AuditEvent, "actor">) => Promise<void>,
  singletons: Iterable<{ readonly def: { readonly name: string } }> = [],
  archives?: object,
): void {
  auditMethods(store, AUDITED, record);
  for (const s of singletons) auditMethods(s, SINGLETON_AUDITED(s.def.name), record);
  if (archives) auditMethods(archives, ARCHIVE_AUDITED, record);
}

/** Replace each method of `target` named in `table` by one that runs it, then records its entry (`failed: <code>` when it threw). */
export function auditMethods(target: object, table: Readonly<Record<string, Describe>>, record: (e: Omit<AuditEvent, "actor">) => Promise<void>): void {
  for (const [name, describe] of Object.entries(table)) {
    const method = (target as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!.bind(target);
    const audited = async (...args: unknown[]) => {
      let result: unknown;
      try {
        result = await method(...args);
      } catch (e) {
        const d = describe(args, undefined);
        await record({ ...d, detail: { ...d.detail, failed: e instanceof CellarError ? e.code : "error" } });
        throw e;
      }
      await record(describe(args, result));
      return result;
    };
    Object.defineProperty(target, name, { value: audited, enumerable: false, configurable: true, writable: true });
  }
}
