// What openStore (open-store.ts) checks entity property names against; store.ts re-exports it.

/**
 * Property names an entity cannot take: the store's methods and fields (a repository is a property of the
 * store object, so it would replace one), `then` (a store would look like a promise), and what every object
 * has. test/store/reserved.test.ts checks that every member of a store is listed.
 */
export const RESERVED = new Set([
  "inspect",
  "dir",
  "recoveryReport",
  "migrationBackup",
  "batch",
  "compact",
  "rotateKey",
  "reencrypt",
  "changeMasterKey",
  "keyInfo",
  "stats",
  "cleanup",
  "backup",
  "recoverFrom",
  "recoveredAtOpen",
  "role",
  "on",
  "close",
  "export",
  "import",
  "audit",
  "then",
  // fields of StoreImpl
  "engine",
  "defs",
  "redacted",
  "records",
  "listeners",
  "closed",
  "upgradeHost",
  "checkOpen",
  "checkWritable",
  "checkWriter",
  "singletons",
  "setMigrations",
  "importFrom",
  // what every object has
  ...Object.getOwnPropertyNames(Object.prototype),
]);
