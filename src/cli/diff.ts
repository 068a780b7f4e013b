/**
 * The canonical comparison of one entity: its message (and every message and enum it reaches
 * through fields, well-known types excepted) as locked, against the current build. Descriptors are
 * compared element by element, by field and value number, never by hashing bytes, so every
 * difference can be named and placed.
 *
 * Each difference says whether protobuf reads records stored with the old shape as the new one
 * without help (`compatible`), and whether it is wrong even with a raised version (`always`).
 */
import {
  getOption,
  hasOption,
  ScalarType,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescMessage,
  type FileRegistry,
} from "@bufbuild/protobuf";
import type { FieldDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { FieldAnnotations } from "../../codegen/annotations.js";
import { fieldPath, messagePath, positionOf, type SourcePosition } from "../../codegen/diagnostics.js";
import type { FoundEntity } from "../../codegen/lock.js";

/** Stable codes of differences. */
export type DifferenceRule =
  | "FIELD_ADDED"
  | "FIELD_REMOVED"
  | "FIELD_NOT_RESERVED"
  | "FIELD_RENAMED"
  | "FIELD_TYPE_CHANGED"
  | "FIELD_CARDINALITY_CHANGED"
  | "FIELD_ONEOF_CHANGED"
  | "FIELD_PRESENCE_CHANGED"
  | "FIELD_NUMBER_REUSED"
  | "FIELD_RULES_CHANGED"
  | "SENSITIVE_ADDED"
  | "SENSITIVE_REMOVED"
  | "RESERVED_REMOVED"
  | "ENUM_VALUE_ADDED"
  | "ENUM_VALUE_REMOVED"
  | "ENUM_VALUE_NOT_RESERVED"
  | "ENUM_VALUE_RENAMED"
  | "MESSAGE_RENAMED"
  | "KEY_CHANGED"
  | "SINGLETON_CHANGED"
  | "ENTITY_OPTIONS_CHANGED";

export interface Difference {
  readonly rule: DifferenceRule;
  /** What differs, lower-case, identifiers in backticks. */
  readonly text: string;
  /** Protobuf reads old records as the new shape without help. */
  readonly compatible: boolean;
  /** Wrong even when the version is raised (reserved numbers and names, sensitivity). */
  readonly always: boolean;
  /** What to do when it is a finding. */
  readonly fix?: string;
  /** In the current schema (module-relative file). */
  readonly position: SourcePosition;
  /** Checked by buf's WIRE_JSON rules too (a buf finding on the same line replaces this one). */
  readonly wire: boolean;
}

const wkt = (typeName: string) => typeName.startsWith("google.protobuf.");

function fieldExt(registry: FileRegistry): DescExtension | undefined {
  return registry.getExtension("cellar.v1.field");
}

function annotations(ext: DescExtension | undefined, field: DescField): FieldAnnotations | undefined {
  if (!ext || !hasOption(field, ext)) return undefined;
  return getOption(field, ext) as FieldAnnotations;
}

/** Messages and enums an entity reaches through its fields (well-known types excluded), by full name. */
export function closure(root: DescMessage): Map<string, DescMessage | DescEnum> {
  const out = new Map<string, DescMessage | DescEnum>();
  const visit = (m: DescMessage) => {
    if (out.has(m.typeName) || wkt(m.typeName)) return;
    out.set(m.typeName, m);
    for (const f of m.fields) {
      if (f.enum && !wkt(f.enum.typeName)) out.set(f.enum.typeName, f.enum);
      if (f.message) visit(f.message);
    }
  };
  visit(root);
  return out;
}

function enumPath(e: DescEnum): number[] {
  if (e.parent) return [...messagePath(e.parent), 4, e.parent.proto.enumType.indexOf(e.proto)];
  return [5, e.file.proto.enumType.indexOf(e.proto)];
}

function typeLabel(f: FieldDescriptorProto, rename: (n: string) => string): string {
  if (f.typeName !== "") return rename(f.typeName.replace(/^\./, ""));
  return ScalarType[f.type as unknown as ScalarType]?.toLowerCase() ?? String(f.type);
}

function cardinality(f: DescField): string {
  return f.fieldKind === "list" ? "repeated" : f.fieldKind === "map" ? "map" : "singular";
}

function reservesNumber(m: DescMessage | DescEnum, n: number): boolean {
  const ranges = m.proto.reservedRange as readonly { start: number; end: number }[];
  // Message ranges are end-exclusive, enum ranges end-inclusive.
  const exclusive = m.kind === "message";
  return ranges.some((r) => n >= r.start && (exclusive ? n < r.end : n <= r.end));
}

function reservesName(m: DescMessage | DescEnum, name: string): boolean {
  return m.proto.reservedName.includes(name);
}

function rulesOf(a: FieldAnnotations | undefined): string {
  if (!a) return "";
  const { sensitive: _s, ...rest } = a as FieldAnnotations & Record<string, unknown>;
  void _s;
  return JSON.stringify(
    Object.fromEntries(Object.entries(rest).filter(([k, v]) => !k.startsWith("$") && v !== undefined && v !== "" && v !== false)),
  );
}

/** A fix that adds statements to a message or enum: one statement per line, indented, ready to paste. */
function pasteFix(where: string, statements: readonly string[], why: string): string {
  return `add ${statements.length === 1 ? "this line" : "these lines"} to ${where} ${why}:${statements.map((s) => `\n      ${s}`).join("")}`;
}

/**
 * Differences between a locked entity and its current shape. `oldRegistry` holds the locked
 * descriptors; `current` comes from the current build (with source info, for positions).
 */
export function diffEntity(
  locked: FoundEntity,
  oldRegistry: FileRegistry,
  current: FoundEntity,
  newRegistry: FileRegistry,
): Difference[] {
  const out: Difference[] = [];
  const oldRoot = locked.desc;
  const newRoot = current.desc;
  const rename = (n: string) =>
    oldRoot.typeName !== newRoot.typeName && (n === oldRoot.typeName || n.startsWith(oldRoot.typeName + "."))
      ? newRoot.typeName + n.slice(oldRoot.typeName.length)
      : n;
  const oldExt = fieldExt(oldRegistry);
  const newExt = fieldExt(newRegistry);
  const entity = `\`${current.name}\``;
  const add = (d: Omit<Difference, "wire"> & { wire?: boolean }) => out.push({ wire: false, ...d });

  if (oldRoot.typeName !== newRoot.typeName) {
    add({
      rule: "MESSAGE_RENAMED",
      text: `message of entity ${entity} renamed from \`${oldRoot.typeName}\` to \`${newRoot.typeName}\` (the storage name is unchanged)`,
      compatible: true,
      always: false,
      position: positionOf(newRoot.file, messagePath(newRoot)),
    });
  }

  // Entity options that decide how records are stored.
  const oldKey = oldRoot.fields.find((f) => f.name === locked.key);
  const newKey = newRoot.fields.find((f) => f.name === current.key);
  if (locked.singleton !== current.singleton) {
    add({
      rule: "SINGLETON_CHANGED",
      text: `entity ${entity} changed from ${locked.singleton ? "a singleton to a collection" : "a collection to a singleton"}`,
      compatible: false,
      always: false,
      position: positionOf(newRoot.file, messagePath(newRoot)),
    });
  } else if (
    !locked.singleton &&
    (oldKey?.number !== newKey?.number || oldKey?.name !== newKey?.name || oldKey?.proto.type !== newKey?.proto.type)
  ) {
    add({
      rule: "KEY_CHANGED",
      text: `key of entity ${entity} changed from \`${locked.key}\`${oldKey ? ` (${oldKey.number}, ${typeLabel(oldKey.proto, rename)})` : ""} to \`${current.key}\`${newKey ? ` (${newKey.number}, ${typeLabel(newKey.proto, rename)})` : ""}`,
      compatible: false,
      always: false,
      position: positionOf(newRoot.file, messagePath(newRoot)),
    });
  }

  const oldTypes = closure(oldRoot);
  const newTypes = closure(newRoot);
  for (const [oldName, oldType] of oldTypes) {
    const newType = newTypes.get(rename(oldName));
    if (!newType || newType.kind !== oldType.kind) continue; // no longer reached: the field that reached it is reported
    if (oldType.kind === "message" && newType.kind === "message") diffMessage(oldType, newType);
    if (oldType.kind === "enum" && newType.kind === "enum") diffEnum(oldType, newType);
  }
  return out;

  function diffMessage(o: DescMessage, n: DescMessage): void {
    const at = positionOf(n.file, messagePath(n));
    const label = `\`${n.typeName}\``;
    for (const of of o.fields) {
      const nf = n.fields.find((f) => f.number === of.number);
      if (!nf) {
        const number = reservesNumber(n, of.number);
        const name = reservesName(n, of.name);
        if (number && name) {
          add({ rule: "FIELD_REMOVED", text: `field \`${of.name}\` (${of.number}) removed from ${label}, its number and name reserved`, compatible: true, always: false, position: at });
        } else {
          const missing = [number ? "" : `reserved ${of.number};`, name ? "" : `reserved "${of.name}";`].filter((x) => x !== "");
          add({
            rule: "FIELD_NOT_RESERVED",
            text: `field \`${of.name}\` (${of.number}) was removed from ${label} without reserving its ${[number ? "" : "number", name ? "" : "name"].filter((x) => x !== "").join(" and ")}`,
            compatible: false,
            always: true,
            fix: pasteFix(`message ${label}`, missing, "so the number and name are never reused (stored records still carry them)"),
            position: at,
            wire: true,
          });
        }
        continue;
      }
      const fat = positionOf(n.file, fieldPath(nf));
      const what = `field \`${nf.name}\` (${nf.number}) of ${label}`;
      const ot = typeLabel(of.proto, rename);
      const nt = typeLabel(nf.proto, (x) => x);
      const retyped = ot !== nt || cardinality(of) !== cardinality(nf);
      if (of.name !== nf.name && retyped) {
        // Another name and another type: not a rename, a new field on the old number (one cause).
        add({
          rule: "FIELD_NUMBER_REUSED",
          text: `field number ${nf.number} of ${label} now holds \`${nf.name}\` (${cardinality(nf)} \`${nt}\`); records stored earlier hold \`${of.name}\` (${cardinality(of)} \`${ot}\`) there`,
          compatible: false,
          always: false,
          position: fat,
          wire: true,
        });
      } else if (of.name !== nf.name) {
        add({ rule: "FIELD_RENAMED", text: `${what} was renamed from \`${of.name}\` (JSON name \`${of.jsonName}\` → \`${nf.jsonName}\`)`, compatible: false, always: false, position: fat, wire: true });
      } else if (of.jsonName !== nf.jsonName) {
        add({ rule: "FIELD_RENAMED", text: `${what} changed its JSON name from \`${of.jsonName}\` to \`${nf.jsonName}\``, compatible: false, always: false, position: fat, wire: true });
      }
      if (retyped && of.name === nf.name) {
        if (cardinality(of) !== cardinality(nf)) {
          add({ rule: "FIELD_CARDINALITY_CHANGED", text: `${what} changed from ${cardinality(of)} \`${ot}\` to ${cardinality(nf)} \`${nt}\``, compatible: false, always: false, position: fat, wire: true });
        } else {
          add({ rule: "FIELD_TYPE_CHANGED", text: `${what} changed type from \`${ot}\` to \`${nt}\``, compatible: false, always: false, position: fat, wire: true });
        }
      }
      if ((of.oneof?.name ?? "") !== (nf.oneof?.name ?? "")) {
        add({
          rule: "FIELD_ONEOF_CHANGED",
          text: `${what} moved ${of.oneof ? `out of oneof \`${of.oneof.name}\`` : ""}${of.oneof && nf.oneof ? " and " : ""}${nf.oneof ? `into oneof \`${nf.oneof.name}\`` : ""}`,
          compatible: false,
          always: false,
          position: fat,
          wire: true,
        });
      } else if (of.proto.proto3Optional !== nf.proto.proto3Optional) {
        add({ rule: "FIELD_PRESENCE_CHANGED", text: `${what} ${nf.proto.proto3Optional ? "became" : "is no longer"} \`optional\``, compatible: true, always: false, position: fat });
      }
      const oa = annotations(oldExt, of);
      const na = annotations(newExt, nf);
      if (oa?.sensitive && !na?.sensitive) {
        add({
          rule: "SENSITIVE_REMOVED",
          text: `${what} lost \`sensitive\``,
          compatible: false,
          always: true,
          fix: "a field never loses `sensitive`: records already stored hold a secret there; put `sensitive: true` back (to store something else, add a new field and reserve this one)",
          position: fat,
        });
      } else if (!oa?.sensitive && na?.sensitive) {
        add({ rule: "SENSITIVE_ADDED", text: `${what} became \`sensitive\``, compatible: true, always: false, position: fat });
      }
      if (rulesOf(oa) !== rulesOf(na)) {
        add({
          rule: "FIELD_RULES_CHANGED",
          text: `validation rules of ${what} changed (they apply to writes; records stored earlier are not checked again)`,
          compatible: true,
          always: false,
          position: fat,
        });
      }
    }
    for (const nf of n.fields) {
      if (o.fields.some((f) => f.number === nf.number)) continue;
      const fat = positionOf(n.file, fieldPath(nf));
      if (reservesNumber(o, nf.number) || reservesName(o, nf.name)) {
        add({
          rule: "FIELD_NUMBER_REUSED",
          text: `field \`${nf.name}\` (${nf.number}) of ${label} reuses a ${reservesNumber(o, nf.number) ? `number (${nf.number})` : `name (\`${nf.name}\`)`} the locked schema reserved`,
          compatible: false,
          always: false,
          position: fat,
          wire: true,
        });
      } else {
        add({ rule: "FIELD_ADDED", text: `field \`${nf.name}\` (${nf.number}) added to ${label}`, compatible: true, always: false, position: fat });
      }
    }
    diffReserved(o, n, at, label);
  }

  function diffReserved(o: DescMessage | DescEnum, n: DescMessage | DescEnum, at: SourcePosition, label: string): void {
    const used = (num: number) => (n.kind === "message" ? n.fields.some((f) => f.number === num) : n.values.some((v) => v.number === num));
    const usedName = (name: string) => (n.kind === "message" ? n.fields.some((f) => f.name === name) : n.values.some((v) => v.name === name));
    const exclusive = o.kind === "message";
    for (const r of o.proto.reservedRange as readonly { start: number; end: number }[]) {
      const last = exclusive ? r.end - 1 : r.end;
      for (let num = r.start; num <= Math.min(last, r.start + 10_000); num++) {
        if (!reservesNumber(n, num) && !used(num)) {
          add({
            rule: "RESERVED_REMOVED",
            text: `${label} no longer reserves number ${num}`,
            compatible: false,
            always: true,
            fix: `keep \`reserved ${num};\` in ${label}: stored records may still carry that number`,
            position: at,
          });
          break;
        }
      }
    }
    for (const name of o.proto.reservedName) {
      if (!reservesName(n, name) && !usedName(name)) {
        add({
          rule: "RESERVED_REMOVED",
          text: `${label} no longer reserves name \`${name}\``,
          compatible: false,
          always: true,
          fix: `keep \`reserved "${name}";\` in ${label}: JSON exports may still carry that name`,
          position: at,
        });
      }
    }
  }

  function diffEnum(o: DescEnum, n: DescEnum): void {
    const at = positionOf(n.file, enumPath(n));
    const label = `\`${n.typeName}\``;
    for (const ov of o.values) {
      const nv = n.values.find((v) => v.number === ov.number);
      if (!nv) {
        const number = reservesNumber(n, ov.number);
        const name = reservesName(n, ov.name);
        if (number && name) {
          add({ rule: "ENUM_VALUE_REMOVED", text: `value \`${ov.name}\` (${ov.number}) removed from ${label}, its number and name reserved`, compatible: true, always: false, position: at });
        } else {
          add({
            rule: "ENUM_VALUE_NOT_RESERVED",
            text: `value \`${ov.name}\` (${ov.number}) was removed from ${label} without reserving its ${[number ? "" : "number", name ? "" : "name"].filter((x) => x !== "").join(" and ")}`,
            compatible: false,
            always: true,
            fix: pasteFix(`enum ${label}`, [number ? "" : `reserved ${ov.number};`, name ? "" : `reserved "${ov.name}";`].filter((x) => x !== ""), "so the number and name are never reused (stored records and JSON exports still carry them)"),
            position: at,
            wire: true,
          });
        }
      } else if (nv.name !== ov.name) {
        add({
          rule: "ENUM_VALUE_RENAMED",
          text: `value ${ov.number} of ${label} was renamed from \`${ov.name}\` to \`${nv.name}\` (JSON uses the name)`,
          compatible: false,
          always: false,
          position: positionOf(n.file, [...enumPath(n), 2, n.proto.value.indexOf(nv.proto)]),
          wire: true,
        });
      }
    }
    for (const nv of n.values) {
      if (o.values.some((v) => v.number === nv.number)) continue;
      add({
        rule: "ENUM_VALUE_ADDED",
        text: `value \`${nv.name}\` (${nv.number}) added to ${label}`,
        compatible: true,
        always: false,
        position: positionOf(n.file, [...enumPath(n), 2, n.proto.value.indexOf(nv.proto)]),
      });
    }
    diffReserved(o, n, at, label);
  }
}
