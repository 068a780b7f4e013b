/**
 * A small app of its own for the packed-tarball tests (test/lts/node-lts.test.ts): a journal schema (a collection with a sensitive field, an enum
 * index and a timestamp) and an app that writes, fails a validation, reopens and queries. `main.ts`
 * prints one JSON line: {@link journalAppOutput}.
 */
export const journalProto = `syntax = "proto3";

package journal.v1;

import "cellar/v1/options.proto";
import "google/protobuf/timestamp.proto";

// Entry is one journal entry of this app.
message Entry {
  option (cellar.v1.entity) = {
    version: 1
    name: "entries"
    key: "id"
    indexes: ["mood"]
  };

  string id = 1 [(cellar.v1.field).required = true];
  string text = 2 [(cellar.v1.field) = {
    sensitive: true
    max_length: 10000
  }];
  Mood mood = 3;
  google.protobuf.Timestamp written_at = 4;
}

// Mood of an entry.
enum Mood {
  MOOD_UNSPECIFIED = 0;
  MOOD_GOOD = 1;
  MOOD_BAD = 2;
}
`;

export const journalMainTs = `import { timestampNow } from "@bufbuild/protobuf/wkt";
import { isCellarError } from "cellar";
import { openStore } from "./generated/index.js";
import { Mood } from "./generated/journal/v1/journal_pb.js";

const dir = process.argv[2] ?? "";
const key = new Uint8Array(32).fill(7);
const first = await openStore({ dir, key });
await first.entries.put({ id: "e1", text: "A good day", mood: Mood.GOOD, writtenAt: timestampNow() });
await first.entries.put({ id: "e2", text: "A bad day", mood: Mood.BAD });
let rejected = "";
try {
  await first.entries.put({ id: "" });
} catch (e) {
  rejected = isCellarError(e, "E_VALIDATION") ? "validation" : String(e);
}
const settings = await first.appSettings.get();
await first.close();
const again = await openStore({ dir, key });
const good = await again.entries.query({ mood: Mood.GOOD });
console.log(JSON.stringify({
  count: await again.entries.count(),
  good: good.map((e) => e.text),
  rejected,
  language: settings.language,
}));
await again.close();
`;

/** What `main.ts` prints (one line of JSON), whether the store was new or written by an earlier run. */
export const journalAppOutput = { count: 2, good: ["A good day"], rejected: "validation", language: "en" };

/** The app's tsconfig.json: strict, NodeNext, src/ to out/, with the repository's @types/node. */
export function journalTsconfig(repoRoot: string): string {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      skipLibCheck: true,
      outDir: "out",
      rootDir: "src",
      typeRoots: [`${repoRoot}/node_modules/@types`],
      types: ["node"],
    },
    include: ["src"],
  });
}
