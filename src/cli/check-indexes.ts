/**
 * `cellar check`'s notes on indexes: an index declared now and not in the lock's latest version is built
 * when a store opens, one in the lock and no longer declared is dropped then. Neither needs a new version or
 * a migration (an index is identified by its fields' numbers, see codegen/indexes.ts), so both are `info:`
 * lines and never change the exit code.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { entityOptionField } from "../../codegen/annotations.js";
import { messageOptionPath, positionOf, type SourcePosition } from "../../codegen/diagnostics.js";
import { declaredIndexes, indexPositions } from "../../codegen/indexes.js";
import type { FoundEntity } from "../../codegen/lock.js";
import type { Finding } from "./check.js";
import type { Position } from "./schema.js";

/**
 * The differences between the indexes `current` declares and those of `locked` (the lock's latest version
 * of the same entity), in declaration order: new ones at their declaration, removed ones at `indexes`
 * (or the entity option when none is left).
 */
export function indexFindings(
  current: FoundEntity,
  locked: FoundEntity,
  extensionNumber: number,
  pos: (p: SourcePosition) => Position,
  /** The text of a schema file (a path relative to the app root), to find a declaration inside a list. */
  source: (file: string) => string | undefined,
): Finding[] {
  const now = declaredIndexes(current.desc, current.indexes);
  const before = declaredIndexes(locked.desc, locked.indexes);
  const statementAt = indexPositions(current.desc, extensionNumber, current.indexes.length);
  const listEnd = listEndLine(current.desc, extensionNumber);
  const at = (i: number): Position => {
    const p = pos(statementAt(i));
    return listEnd === undefined ? p : (findLiteral(source(p.file), current.indexes[i]!, p, Math.max(listEnd, p.line)) ?? p);
  };
  const entity = `\`${current.name}\``;
  const out: Finding[] = [];
  for (const x of now) {
    if (before.some((b) => b.id === x.id)) continue;
    out.push({
      level: "info",
      rule: "INDEX_ADDED",
      entity: current.name,
      position: at(x.at),
      message: `index \`${x.name}\` of entity ${entity} is new: built at open`,
    });
  }
  const list = pos(positionOf(current.desc.file, messageOptionPath(current.desc, extensionNumber, entityOptionField.indexes, 0)));
  for (const b of before) {
    if (now.some((x) => x.id === b.id)) continue;
    out.push({ level: "info", rule: "INDEX_REMOVED", entity: current.name, position: list, message: `index \`${b.name}\` of entity ${entity} was removed: dropped at open` });
  }
  return out;
}

/**
 * The last line (1-based) of the first `indexes` statement (`indexes: [` … `]` may span several lines),
 * or undefined when the source info has no span for it.
 */
function listEndLine(desc: DescMessage, extensionNumber: number): number | undefined {
  const path = messageOptionPath(desc, extensionNumber, entityOptionField.indexes, 0);
  const l = desc.file.proto.sourceCodeInfo?.location.find((x) => x.path.length === path.length && x.path.every((p, i) => p === path[i]));
  if (!l || l.span.length < 3) return undefined;
  return (l.span.length === 4 ? l.span[2]! : l.span[0]!) + 1;
}

/** The position of `"<declaration>"` (or `'…'`) written between `from` and line `to`, if it is there once. */
function findLiteral(text: string | undefined, declaration: string, from: Position, to: number): Position | undefined {
  if (text === undefined) return undefined;
  const lines = text.split("\n");
  const hits: Position[] = [];
  for (let line = from.line; line <= to && line <= lines.length; line++) {
    const l = lines[line - 1]!;
    for (const q of ['"', "'"]) {
      const col = l.indexOf(q + declaration + q, line === from.line ? from.column - 1 : 0);
      if (col >= 0) hits.push({ file: from.file, line, column: col + 1 });
    }
  }
  return hits.length === 1 ? hits[0] : undefined;
}
