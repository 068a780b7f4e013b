// A throwaway app project for driver tests: schemas in proto/, Cellar's options in cellar/,
// buf.gen.yaml running protoc-gen-es and protoc-gen-cellar (from source) into src/generated.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { genTemplate, runtimeImportFrom, scratchDir, writeWorkspace } from "./helpers.js";

/** The schema lock folder of projects made with `{ lock: true }`. */
export const projectLock = "proto/cellar.lock";

export function makeProject(prefix: string, protos: Record<string, string>, options: { lock?: boolean } = {}): string {
  const dir = scratchDir(prefix);
  writeWorkspace(dir, protos);
  writeFileSync(
    join(dir, "buf.gen.yaml"),
    genTemplate("src/generated", runtimeImportFrom(join(dir, "src", "generated")), options.lock ? projectLock : undefined),
  );
  return dir;
}

export function notesSchema(version: number): string {
  return `syntax = "proto3";
package notes.v1;
import "cellar/v1/options.proto";

// Note is a user's note.
message Note {
  option (cellar.v1.entity) = { version: ${version}, name: "notes", key: "id" };
  string id = 1;
  string body = 2;
}
`;
}
