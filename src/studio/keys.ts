/** Record keys between URLs and the store: parsed by the entity's key kind, and the stored key's text. */
import type { CollectionDefinition } from "../runtime/index.js";

/** A key from a URL or a search box, typed as the entity's key field (`E_USAGE`-like errors as plain messages). */
export function parseKey(def: CollectionDefinition, text: string): string | number | bigint {
  if (def.keyKind === "string") return text;
  if (!/^-?\d+$/.test(text.trim())) throw new Error(`the key of \`${def.name}\` is an integer`);
  return def.keyKind === "int64" || def.keyKind === "uint64" ? BigInt(text.trim()) : Number(text.trim());
}

/** The key as the store keeps it (string keys as they are, integers as decimal text). */
export function encodeStoredKey(def: CollectionDefinition, key: string | number | bigint): string {
  return def.keyKind === "string" ? String(key) : BigInt(key).toString();
}
