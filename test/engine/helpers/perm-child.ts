/**
 * Child process for the permissions test: with umask 0 (the widest), create a store at argv[2] (its parent
 * missing too), then make Cellar create every kind of file it has: journals, segments (compaction),
 * KEYRING and MANIFEST rewrites (rotateKey, reencrypt, changeMasterKey), a pre-migration backup file (in
 * `<store>.backups` beside the store), and a
 * quarantine copy of a damaged segment. Prints the quarantine copy's name and `DONE`.
 */
import { Engine } from "../../../src/runtime/storage/engine.js";
import { keys } from "../../../src/runtime/crypto/keys.js";
import { openStore } from "../../../src/runtime/typed/store.js";
import { damageSegment } from "../../helpers/files.js";
import { notesAt, step1to2 } from "../../store/helpers/notes-versions.js";

const dir = process.argv[2]!;
process.umask(0);
const key = new Uint8Array(32).fill(7);
const key2 = new Uint8Array(32).fill(8);

let store = await openStore({ notes: notesAt(1) }, { dir, key });
await store.batch((tx) => {
  for (let i = 0; i < 50; i++) tx.notes.put({ id: `n${i}`, text: `note ${i}`, tagsCsv: "a", secret: `s${i}` });
});
await store.compact();
await store.rotateKey();
await store.reencrypt();
await store.changeMasterKey(keys.raw(key2));
await store.notes.put({ id: "late", text: "after", tagsCsv: "", secret: "x" });
await store.close();

store = await openStore({ notes: notesAt(2) }, { dir, key: key2, migrations: [step1to2] });
if (!store.migrationBackup) throw new Error("no migration backup was made");
await store.close();

damageSegment(dir);
const e = await Engine.open({ dir, key: key2, verifyOnOpen: true, onCorruption: "quarantine" });
console.log(`QUARANTINED ${e.recovery.damaged.map((d) => d.quarantinedAs).join(",")}`);
await e.close();
console.log("DONE");
