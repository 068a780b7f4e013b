/** Shared by the audit log tests: a store with the example entities, seeded with sensitive values to look for. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../src/generated/index.js";
import { Engine } from "../../src/runtime/storage/engine.js";
import { AUDIT_ENTITY, decodeEntry } from "../../src/runtime/format/audit.js";

export const key = new Uint8Array(32).fill(9);
export type Store = Awaited<ReturnType<typeof openStore>>;

/** Values no audit entry may ever hold. */
export const SECRETS = ["ana-SECRET@example.com", "tok-SECRET-1", "sk-SECRET-2", "bo-SECRET@example.com"];

export function tempRoot(name: string): { root: string; fresh: (n: string) => string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `cellar-audit-${name}-`));
  let n = 0;
  return { root, fresh: (s) => path.join(root, `${s}-${n++}`), cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export async function seed(store: Store): Promise<void> {
  await store.profiles.put({ id: "p1", displayName: "Ana", email: SECRETS[0]!, authToken: SECRETS[1]! });
  await store.profiles.put({ id: "p2", displayName: "Bo", email: SECRETS[3]! });
}

/** Every `~audit` record as the engine stores it (opened with the key, as an attacker holding it would). */
export async function rawAudit(dir: string, withKey: Uint8Array = key): Promise<Map<string, Uint8Array>> {
  const engine = await Engine.open({ dir, key: withKey });
  try {
    const out = new Map<string, Uint8Array>();
    for (const [k] of engine.scan(AUDIT_ENTITY)) out.set(k, engine.get(AUDIT_ENTITY, k)!.value.slice());
    return out;
  } finally {
    await engine.close();
  }
}

/** Change `~audit` records directly through the engine (someone who can write records, without the audit key). */
export async function tamper(dir: string, f: (records: Map<string, Uint8Array>) => { put?: [string, Uint8Array][]; del?: string[] }): Promise<void> {
  const before = await rawAudit(dir);
  const { put = [], del = [] } = f(before);
  const engine = await Engine.open({ dir, key });
  try {
    await engine.write([
      ...put.map(([k, value]) => ({ op: "put" as const, entity: AUDIT_ENTITY, key: k, version: 1, value, terms: [] })),
      ...del.map((k) => ({ op: "delete" as const, entity: AUDIT_ENTITY, key: k })),
    ]);
  } finally {
    await engine.close();
  }
}

/** The decoded bodies of every entry, as JSON text (what a search for values looks through). */
export function decodedText(records: Map<string, Uint8Array>): string {
  const out: unknown[] = [];
  for (const [k, v] of records) if (k.startsWith("e/")) out.push(decodeEntry(v).body);
  return JSON.stringify(out);
}
