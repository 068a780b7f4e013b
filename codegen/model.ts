/**
 * The entity model: everything the emitters need, read from `(cellar.v1.entity)` and
 * `(cellar.v1.field)` and checked. Every problem is reported with its position in the schema; the
 * emitters only run on a model without errors.
 */
import { ScalarType, type DescEnum, type DescField, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import {
  entityOptionField,
  fieldAnnotationField,
  findCellarExtensions,
  historyOptionField,
  readEntityOptions,
  readFieldAnnotations,
  retentionOptionField,
  type CellarExtensions,
  type EntityOptions,
} from "./annotations.js";
import { Diagnostics, fieldOptionPath, messageOptionPath, messagePath, positionOf } from "./diagnostics.js";
import { indexComponents, indexId, indexableKindsText, indexPositions, intScalars, isIndexableType } from "./indexes.js";
import { camelCase, snakeCase } from "./names.js";

/** The protobuf scalar kind of a key field, as the runtime names it (`KeyKind` in `src/runtime/typed/entity.ts`). */
export type KeyKind = "string" | "int32" | "uint32" | "int64" | "uint64";

/** What one value of a field is, after protobuf-es's mapping (wrappers unboxed, Struct as JSON). */
export type ValueType =
  | { readonly kind: "scalar"; readonly scalar: ScalarType; readonly longAsString: boolean }
  | { readonly kind: "enum"; readonly desc: DescEnum }
  | { readonly kind: "message"; readonly desc: DescMessage }
  | { readonly kind: "json" };

export type Container = "singular" | "list" | "map";

/** Checked validation rules of one field, from `(cellar.v1.field)`. */
export interface FieldRules {
  readonly required: boolean;
  readonly sensitive: boolean;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly min?: number;
  readonly max?: number;
  readonly maxItems?: number;
}

/** A parsed `(cellar.v1.field).default`. */
export type DefaultValue =
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "number"; readonly value: number }
  | { readonly kind: "bigint"; readonly value: bigint }
  | { readonly kind: "enum"; readonly desc: DescEnum; readonly localName: string; readonly number: number };

/** Defaults of a singleton, nested like the message (only singular message fields nest). */
export interface DefaultsTree {
  readonly entries: readonly { readonly field: DescField; readonly value: DefaultValue | DefaultsTree }[];
}

export interface RetentionModel {
  readonly timestampField?: DescField;
  readonly maxAgeMs?: number;
  readonly maxCount?: number;
}

/** Checked `(cellar.v1.entity).history`. */
export interface HistoryModel {
  readonly keep?: number;
  readonly maxAgeMs?: number;
}

interface EntityCommon {
  readonly desc: DescMessage;
  /** Storage name, e.g. `focus_sessions`. */
  readonly name: string;
  /** Property of the typed store, e.g. `focusSessions`. */
  readonly property: string;
  readonly version: number;
  /** Dotted local-name paths of sensitive fields, e.g. `aiProvider.apiKey`. */
  readonly sensitive: readonly string[];
  /** Record history, when the entity keeps one. */
  readonly history: HistoryModel | undefined;
}

export interface CollectionModel extends EntityCommon {
  readonly kind: "collection";
  readonly key: DescField;
  readonly keyKind: KeyKind;
  /** TypeScript type of the key. */
  readonly keyType: "string" | "number" | "bigint";
  /** Every field of every index (`CollectionDefinition.indexes`), in first-seen order. */
  readonly indexes: readonly DescField[];
  /** The indexes as declared (`CollectionDefinition.indexSpecs`), in declaration order. */
  readonly indexSpecs: readonly IndexModel[];
  readonly retention: RetentionModel | undefined;
}

/** One checked `(cellar.v1.entity).indexes` declaration. */
export interface IndexModel {
  /** The fields' numbers joined by `,`. */
  readonly id: string;
  /** The fields, in index order. */
  readonly fields: readonly DescField[];
  /** The declaration without spaces, e.g. `project_id,created_at`. */
  readonly name: string;
}

export interface SingletonModel extends EntityCommon {
  readonly kind: "singleton";
  readonly defaults: DefaultsTree;
}

export type EntityModel = CollectionModel | SingletonModel;

/** An entity marked `retired: true`: no repository, but its storage name stays taken. */
export interface RetiredEntityModel {
  readonly desc: DescMessage;
  readonly name: string;
  readonly version: number;
}

export interface CodegenModel {
  /** Entities in schema order (files as given, then descriptor order). */
  readonly entities: readonly EntityModel[];
  /** Retired entities, in schema order. */
  readonly retired: readonly RetiredEntityModel[];
  /** Validation rules of every annotated field in the generated files. */
  readonly rules: ReadonlyMap<DescField, FieldRules>;
}

/**
 * Store properties that would clash with the store's own members (`store.close()`, `await store`)
 * or with `Object.prototype`.
 */
export const reservedStorageNames: readonly string[] = [
  "batch",
  "close",
  "compact",
  "constructor",
  "dir",
  "flush",
  "has_own_property",
  "off",
  "on",
  "once",
  "recovery_report",
  "stats",
  "then",
  "to_string",
  "value_of",
];

const storageNameRE = /^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$/;

/** Describes a field's type the way the schema spells it: `repeated string`, `map<string, int32>`. */
export function describeFieldType(field: DescField): string {
  const one = (f: { scalar?: ScalarType | undefined; enum?: DescEnum | undefined; message?: DescMessage | undefined }) =>
    f.message ? f.message.typeName : f.enum ? f.enum.typeName : ScalarType[f.scalar ?? ScalarType.STRING].toLowerCase();
  switch (field.fieldKind) {
    case "list":
      return `repeated ${one(field)}`;
    case "map":
      return `map<${ScalarType[field.mapKey].toLowerCase()}, ${one(field)}>`;
    default:
      return one(field);
  }
}

/** The container and value type of a field, after protobuf-es's mapping to TypeScript. */
export function fieldValueType(field: DescField): { container: Container; type: ValueType } {
  switch (field.fieldKind) {
    case "scalar":
      return { container: "singular", type: { kind: "scalar", scalar: field.scalar, longAsString: field.longAsString } };
    case "enum":
      return { container: "singular", type: { kind: "enum", desc: field.enum } };
    case "message":
      if (isWrapperDesc(field.message) && !field.oneof) {
        const inner = field.message.fields[0];
        return {
          container: "singular",
          type: { kind: "scalar", scalar: inner?.scalar ?? ScalarType.STRING, longAsString: false },
        };
      }
      return { container: "singular", type: messageValueType(field, field.message) };
    case "list":
      switch (field.listKind) {
        case "scalar":
          return { container: "list", type: { kind: "scalar", scalar: field.scalar, longAsString: field.longAsString } };
        case "enum":
          return { container: "list", type: { kind: "enum", desc: field.enum } };
        case "message":
          return { container: "list", type: messageValueType(field, field.message) };
      }
      break;
    case "map":
      switch (field.mapKind) {
        case "scalar":
          return { container: "map", type: { kind: "scalar", scalar: field.scalar, longAsString: false } };
        case "enum":
          return { container: "map", type: { kind: "enum", desc: field.enum } };
        case "message":
          return { container: "map", type: messageValueType(field, field.message) };
      }
  }
}

function messageValueType(field: DescField, message: DescMessage): ValueType {
  // protobuf-es represents google.protobuf.Struct as a plain JsonObject, except inside google.protobuf.Value.
  if (message.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") {
    return { kind: "json" };
  }
  return { kind: "message", desc: message };
}


export function is64Bit(scalar: ScalarType): boolean {
  return (
    scalar === ScalarType.INT64 ||
    scalar === ScalarType.SINT64 ||
    scalar === ScalarType.SFIXED64 ||
    scalar === ScalarType.UINT64 ||
    scalar === ScalarType.FIXED64
  );
}

export function isNumeric(scalar: ScalarType): boolean {
  return intScalars.has(scalar) || scalar === ScalarType.FLOAT || scalar === ScalarType.DOUBLE;
}

/**
 * Whether the zero value of a proto3 field without `optional` (`""`, `0`, empty bytes) means "unset" and is
 * exempt from the field's rules: the field is singular, outside a oneof, not `required`, and its rules would
 * refuse the zero. protobuf stores nothing for a zero, and a record read back carries it, so checking it
 * would refuse writing back a record as it was read (`update`, `put({ ...record })`). Both validators
 * (generate-zod.ts and the codec's fast path) follow this.
 */
export function zeroIsUnset(field: DescField, rules: FieldRules | undefined): boolean {
  if (!rules || rules.required || field.fieldKind !== "scalar" || field.oneof || field.presence !== IMPLICIT_PRESENCE) return false;
  if (field.scalar === ScalarType.STRING) {
    return (rules.minLength ?? 0) >= 1 || (rules.pattern !== undefined && !new RegExp(rules.pattern).test(""));
  }
  if (field.scalar === ScalarType.BYTES) return (rules.minLength ?? 0) >= 1;
  if (field.scalar === ScalarType.BOOL) return false;
  return (rules.min !== undefined && Number(rules.min) > 0) || (rules.max !== undefined && Number(rules.max) < 0);
}

/** `FeatureSet.FieldPresence.IMPLICIT`: a proto3 field without `optional`. */
const IMPLICIT_PRESENCE = 2;

/** Inclusive range of an integer scalar. */
export function integerRange(scalar: ScalarType): [bigint, bigint] | undefined {
  switch (scalar) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return [-(2n ** 31n), 2n ** 31n - 1n];
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return [0n, 2n ** 32n - 1n];
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return [-(2n ** 63n), 2n ** 63n - 1n];
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return [0n, 2n ** 64n - 1n];
    default:
      return undefined;
  }
}

function keyKindOf(scalar: ScalarType): KeyKind | undefined {
  switch (scalar) {
    case ScalarType.STRING:
      return "string";
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return "int32";
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return "uint32";
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return "int64";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "uint64";
    default:
      return undefined;
  }
}

/** Parses `max_age` (`90d`, `12h`, `500ms`) into milliseconds. */
export function parseMaxAge(text: string): number | undefined {
  const m = /^([0-9]+)(ms|s|m|h|d|w)$/.exec(text);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "ms"];
  const value = Number(m[1]) * unit;
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** A message's own name with its parents, `Outer.Inner`, for messages to the user. */
function shortName(desc: DescMessage): string {
  const pkg = desc.file.proto.package;
  return pkg ? desc.typeName.slice(pkg.length + 1) : desc.typeName;
}

function list(names: readonly string[]): string {
  return names.map((n) => `\`${n}\``).join(", ");
}

/**
 * Builds and checks the model of the files to generate. `allFiles` must include every import (so
 * the option extensions and field types resolve); `typesInFile` gives descriptor order.
 */
export function buildModel(
  files: readonly DescFile[],
  allFiles: readonly DescFile[],
  typesInFile: (file: DescFile) => Iterable<{ kind: string }>,
): CodegenModel {
  const ext = findCellarExtensions(allFiles);
  const diagnostics = new Diagnostics();
  const rules = new Map<DescField, FieldRules>();
  const entities: EntityModel[] = [];
  const messages: DescMessage[] = [];
  for (const file of files) {
    for (const t of typesInFile(file)) {
      if (t.kind === "message") messages.push(t as DescMessage);
    }
  }
  for (const message of messages) {
    for (const field of message.fields) {
      const r = checkFieldAnnotations(ext, field, diagnostics);
      if (r) rules.set(field, r);
    }
  }
  const retired: RetiredEntityModel[] = [];
  for (const message of messages) {
    const options = readEntityOptions(ext, message);
    if (!options || !ext.entity) continue;
    if (options.retired) {
      const r = checkRetired(ext.entity.number, message, options, diagnostics);
      if (r) retired.push(r);
      continue;
    }
    const entity = checkEntity(ext, ext.entity.number, message, options, diagnostics);
    if (entity) entities.push(entity);
  }
  // Storage names are unique within a store, retired ones included.
  const byName = new Map<string, { desc: DescMessage; name: string }>();
  for (const entity of [...entities, ...retired]) {
    const first = byName.get(entity.name);
    if (first) {
      const at = positionOf(first.desc.file, messagePath(first.desc));
      diagnostics.add(
        positionOf(entity.desc.file, messageOptionPath(entity.desc, ext.entity?.number ?? 0, entityOptionField.name)),
        `entities \`${first.desc.typeName}\` (${at.file}:${at.line}:${at.column}) and \`${entity.desc.typeName}\` both use the storage name \`${entity.name}\`; give one of them another (cellar.v1.entity).name`,
      );
    } else {
      byName.set(entity.name, entity);
    }
  }
  diagnostics.throwIfAny();
  return { entities, retired, rules };
}

/** A retired entity keeps only its version and storage name; every other option is ignored. */
function checkRetired(extNumber: number, desc: DescMessage, o: EntityOptions, d: Diagnostics): RetiredEntityModel | undefined {
  const at = (...sub: number[]) => positionOf(desc.file, messageOptionPath(desc, extNumber, ...sub));
  const label = `\`${shortName(desc)}\``;
  const before = d.count;
  if (o.version < 1) {
    d.add(at(entityOptionField.version), `entity ${label} has no schema version; set \`version: 1\` (or higher) in (cellar.v1.entity)`);
  }
  const name = o.name === "" ? snakeCase(desc.name) : o.name;
  if (o.name !== "" && !storageNameRE.test(name)) {
    d.add(
      at(entityOptionField.name),
      `storage name \`${name}\` of entity ${label} must be lower snake case (words of \`a-z\` and \`0-9\`, each starting with a letter, joined by \`_\`)`,
    );
  }
  return d.count === before ? { desc, name, version: o.version } : undefined;
}

function checkFieldAnnotations(ext: CellarExtensions, field: DescField, d: Diagnostics): FieldRules | undefined {
  const a = readFieldAnnotations(ext, field);
  if (!a || !ext.field) return undefined;
  const extNumber = ext.field.number;
  const at = (sub: number) => positionOf(field.parent.file, fieldOptionPath(field, extNumber, sub));
  const { container, type } = fieldValueType(field);
  const name = `\`${field.name}\` (${describeFieldType(field)})`;
  const isString = type.kind === "scalar" && type.scalar === ScalarType.STRING;
  const isBytes = type.kind === "scalar" && type.scalar === ScalarType.BYTES;
  const numeric = type.kind === "scalar" && isNumeric(type.scalar) && !(is64Bit(type.scalar) && type.longAsString);
  if ((a.minLength !== undefined || a.maxLength !== undefined) && !isString && !isBytes) {
    d.add(
      at(a.minLength !== undefined ? fieldAnnotationField.minLength : fieldAnnotationField.maxLength),
      `\`min_length\` and \`max_length\` apply to string and bytes fields, but field ${name} is neither`,
    );
  }
  if (a.minLength !== undefined && a.maxLength !== undefined && a.minLength > a.maxLength) {
    d.add(at(fieldAnnotationField.minLength), `\`min_length\` (${a.minLength}) of field \`${field.name}\` is greater than its \`max_length\` (${a.maxLength})`);
  }
  if (a.pattern !== "") {
    if (!isString) {
      d.add(at(fieldAnnotationField.pattern), `\`pattern\` applies to string fields, but field ${name} is not one`);
    } else {
      try {
        new RegExp(a.pattern);
      } catch (e) {
        d.add(at(fieldAnnotationField.pattern), `\`pattern\` of field \`${field.name}\` is not a valid JavaScript regular expression: ${(e as Error).message}`);
      }
    }
  }
  if (a.min !== undefined || a.max !== undefined) {
    if (!numeric) {
      d.add(
        at(a.min !== undefined ? fieldAnnotationField.min : fieldAnnotationField.max),
        `\`min\` and \`max\` apply to numeric fields, but field ${name} is not numeric`,
      );
    } else if (type.kind === "scalar" && integerRange(type.scalar)) {
      for (const [label, v, sub] of [
        ["min", a.min, fieldAnnotationField.min],
        ["max", a.max, fieldAnnotationField.max],
      ] as const) {
        if (v !== undefined && !Number.isInteger(v)) {
          d.add(at(sub), `\`${label}\` of integer field \`${field.name}\` must be a whole number, found ${v}`);
        }
      }
    }
    if (a.min !== undefined && a.max !== undefined && a.min > a.max) {
      d.add(at(fieldAnnotationField.min), `\`min\` (${a.min}) of field \`${field.name}\` is greater than its \`max\` (${a.max})`);
    }
  }
  if (a.maxItems !== undefined && container === "singular") {
    d.add(at(fieldAnnotationField.maxItems), `\`max_items\` applies to repeated and map fields, but field ${name} is neither`);
  }
  if (a.required && field.oneof) {
    d.add(
      at(fieldAnnotationField.required),
      `\`required\` cannot be set on field \`${field.name}\`, a member of oneof \`${field.oneof.name}\`: only one member of a oneof can be set`,
    );
  }
  if (a.default !== "") {
    checkDefault(field, a.default, at(fieldAnnotationField.default), d);
  }
  const rules: {
    -readonly [K in keyof FieldRules]: FieldRules[K];
  } = { required: a.required, sensitive: a.sensitive };
  if (a.minLength !== undefined) rules.minLength = a.minLength;
  if (a.maxLength !== undefined) rules.maxLength = a.maxLength;
  if (a.pattern !== "") rules.pattern = a.pattern;
  if (a.min !== undefined) rules.min = a.min;
  if (a.max !== undefined) rules.max = a.max;
  if (a.maxItems !== undefined) rules.maxItems = a.maxItems;
  return rules;
}

/** Parses a `(cellar.v1.field).default`, or returns a reason why it cannot be used. */
export function parseDefault(field: DescField, text: string): DefaultValue | string {
  if (field.oneof) return `\`default\` cannot be set on field \`${field.name}\`, a member of oneof \`${field.oneof.name}\``;
  if (field.fieldKind === "enum") {
    const value = field.enum.values.find((v) => v.name === text || v.localName === text);
    if (!value) {
      return `\`default\` of field \`${field.name}\` is \`${text}\`, which is not a value of enum \`${field.enum.typeName}\` (values: ${list(field.enum.values.map((v) => v.name))})`;
    }
    return { kind: "enum", desc: field.enum, localName: value.localName, number: value.number };
  }
  if (field.fieldKind !== "scalar") {
    return `\`default\` applies to singular scalar and enum fields, but field \`${field.name}\` is \`${describeFieldType(field)}\``;
  }
  const scalar = field.scalar;
  switch (scalar) {
    case ScalarType.STRING:
      return { kind: "string", value: text };
    case ScalarType.BOOL:
      if (text === "true" || text === "false") return { kind: "bool", value: text === "true" };
      return `\`default\` of bool field \`${field.name}\` must be \`true\` or \`false\`, found \`${text}\``;
    case ScalarType.BYTES:
      return `\`default\` is not supported on bytes field \`${field.name}\``;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE: {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) {
        return `\`default\` of field \`${field.name}\` must be a finite decimal number, found \`${text}\``;
      }
      return { kind: "number", value: n };
    }
    default: {
      const range = integerRange(scalar);
      if (!range || !/^-?[0-9]+$/.test(text)) {
        return `\`default\` of ${ScalarType[scalar].toLowerCase()} field \`${field.name}\` must be a whole number, found \`${text}\``;
      }
      const n = BigInt(text);
      if (n < range[0] || n > range[1]) {
        return `\`default\` of ${ScalarType[scalar].toLowerCase()} field \`${field.name}\` is out of range (${range[0]} to ${range[1]}), found \`${text}\``;
      }
      if (is64Bit(scalar)) {
        return field.longAsString ? { kind: "string", value: n.toString() } : { kind: "bigint", value: n };
      }
      return { kind: "number", value: Number(n) };
    }
  }
}

function checkDefault(field: DescField, text: string, at: ReturnType<typeof positionOf>, d: Diagnostics): void {
  const parsed = parseDefault(field, text);
  if (typeof parsed === "string") d.add(at, parsed);
}

function checkEntity(
  ext: CellarExtensions,
  extNumber: number,
  desc: DescMessage,
  o: EntityOptions,
  d: Diagnostics,
): EntityModel | undefined {
  const file = desc.file;
  const at = (...sub: number[]) => positionOf(file, messageOptionPath(desc, extNumber, ...sub));
  const label = `\`${shortName(desc)}\``;
  const before = d.count;
  if (o.version < 1) {
    d.add(at(entityOptionField.version), `entity ${label} has no schema version; set \`version: 1\` (or higher) in (cellar.v1.entity)`);
  }
  let name = o.name;
  if (name === "") {
    name = snakeCase(desc.name);
  } else if (!storageNameRE.test(name)) {
    d.add(
      at(entityOptionField.name),
      `storage name \`${name}\` of entity ${label} must be lower snake case (words of \`a-z\` and \`0-9\`, each starting with a letter, joined by \`_\`)`,
    );
  }
  if (reservedStorageNames.includes(name)) {
    d.add(
      at(entityOptionField.name),
      `storage name \`${name}\` of entity ${label} is reserved (it would clash with \`store.${camelCase(name)}\`); set another (cellar.v1.entity).name`,
    );
  }
  const sensitive = sensitivePaths(ext, desc);
  const history = checkHistory(o, label, at, d);
  const common = { desc, name, property: camelCase(name), version: o.version, sensitive, history };

  if (o.singleton) {
    if (o.key !== "") {
      d.add(
        at(entityOptionField.key),
        `singleton entity ${label} cannot have a key (\`${o.key}\`): a singleton holds exactly one value; remove \`key\` or \`singleton\``,
      );
    }
    if (o.indexes.length > 0) {
      d.add(at(entityOptionField.indexes), `singleton entity ${label} cannot have indexes; remove \`indexes\` or \`singleton\``);
    }
    if (o.retention) {
      d.add(at(entityOptionField.retention), `singleton entity ${label} cannot have a retention rule; remove \`retention\` or \`singleton\``);
    }
    const defaults = collectDefaults(ext, desc, new Set([desc.typeName]));
    return d.count === before ? { kind: "singleton", ...common, defaults } : undefined;
  }

  // Collection: key, indexes, retention.
  let key: DescField | undefined;
  let keyKind: KeyKind | undefined;
  if (o.key === "") {
    d.add(
      at(entityOptionField.key),
      `collection entity ${label} has no key; set \`key\` to the name of its key field, or set \`singleton: true\``,
    );
  } else {
    key = findField(desc, o.key);
    if (!key) {
      d.add(at(entityOptionField.key), `key \`${o.key}\` of entity ${label} names no field of the message${hint(desc, o.key)}`);
    } else {
      keyKind = key.fieldKind === "scalar" ? keyKindOf(key.scalar) : undefined;
      if (!keyKind) {
        d.add(
          at(entityOptionField.key),
          `key field \`${key.name}\` of entity ${label} is \`${describeFieldType(key)}\`; a key must be a singular string or integer field`,
        );
      } else if (key.oneof) {
        d.add(at(entityOptionField.key), `key field \`${key.name}\` of entity ${label} is part of oneof \`${key.oneof.name}\`; a key must always be set`);
      }
      if (readFieldAnnotations(ext, key)?.sensitive) {
        d.add(
          at(entityOptionField.key),
          `sensitive field \`${key.name}\` cannot be the key of entity ${label}: keys are readable by every tool that opens the store (sealed under its meta key, to find records); key the entity by a non-sensitive id`,
        );
      }
    }
  }
  const indexAt = indexPositions(desc, extNumber, o.indexes.length);
  const { indexes, indexSpecs } = checkIndexes(ext, desc, o.indexes, label, indexAt, d);
  let retention: RetentionModel | undefined;
  if (o.retention) {
    const r = o.retention;
    const rAt = (sub: number) => at(entityOptionField.retention, sub);
    let timestampField: DescField | undefined;
    if (r.timestampField !== "") {
      timestampField = findField(desc, r.timestampField);
      if (!timestampField) {
        d.add(rAt(retentionOptionField.timestampField), `retention \`timestamp_field\` \`${r.timestampField}\` of entity ${label} names no field of the message${hint(desc, r.timestampField)}`);
      } else if (timestampField.fieldKind !== "message" || timestampField.message.typeName !== "google.protobuf.Timestamp") {
        d.add(
          rAt(retentionOptionField.timestampField),
          `retention \`timestamp_field\` \`${timestampField.name}\` of entity ${label} is \`${describeFieldType(timestampField)}\`; it must be a google.protobuf.Timestamp field`,
        );
      }
    }
    let maxAgeMs: number | undefined;
    if (r.maxAge !== "") {
      maxAgeMs = parseMaxAge(r.maxAge);
      if (maxAgeMs === undefined) {
        d.add(rAt(retentionOptionField.maxAge), `retention \`max_age\` of entity ${label} must be a positive whole number with a unit (\`ms\`, \`s\`, \`m\`, \`h\`, \`d\`, \`w\`), e.g. \`90d\`; found \`${r.maxAge}\``);
      } else if (r.timestampField === "") {
        d.add(rAt(retentionOptionField.maxAge), `retention \`max_age\` of entity ${label} needs a \`timestamp_field\` to measure the age by`);
      }
    }
    if (r.maxAge === "" && r.maxCount === 0) {
      d.add(at(entityOptionField.retention), `retention of entity ${label} sets neither \`max_age\` nor \`max_count\``);
    }
    retention = {
      ...(timestampField ? { timestampField } : {}),
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
      ...(r.maxCount > 0 ? { maxCount: r.maxCount } : {}),
    };
  }
  if (d.count !== before || !key || !keyKind) return undefined;
  const keyType = keyKind === "string" ? "string" : keyKind === "int64" || keyKind === "uint64" ? (key.fieldKind === "scalar" && key.longAsString ? "string" : "bigint") : "number";
  return { kind: "collection", ...common, key, keyKind, keyType, indexes, indexSpecs, retention };
}

/** `(cellar.v1.entity).history`: `keep` ≥ 1 and `max_age` in retention's syntax, at least one of them. */
function checkHistory(
  o: EntityOptions,
  label: string,
  at: (...sub: number[]) => ReturnType<typeof positionOf>,
  d: Diagnostics,
): HistoryModel | undefined {
  const h = o.history;
  if (!h) return undefined;
  const hAt = (sub: number) => at(entityOptionField.history, sub);
  let maxAgeMs: number | undefined;
  if (h.maxAge !== "") {
    maxAgeMs = parseMaxAge(h.maxAge);
    if (maxAgeMs === undefined) {
      d.add(hAt(historyOptionField.maxAge), `history \`max_age\` of entity ${label} must be a positive whole number with a unit (\`ms\`, \`s\`, \`m\`, \`h\`, \`d\`, \`w\`), e.g. \`30d\`; found \`${h.maxAge}\``);
    }
  }
  if (h.keep === 0 && h.maxAge === "") {
    d.add(at(entityOptionField.history), `history of entity ${label} sets neither \`keep\` (at least 1) nor \`max_age\``);
  }
  return { ...(h.keep > 0 ? { keep: h.keep } : {}), ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) };
}

function findField(desc: DescMessage, protoName: string): DescField | undefined {
  return desc.fields.find((f) => f.name === protoName);
}

/** "; did you mean `created_at`?" when the name is a field's local or JSON name, else the field list. */
function hint(desc: DescMessage, name: string): string {
  const near = desc.fields.find((f) => f.localName === name || f.jsonName === name || f.name.toLowerCase() === name.toLowerCase());
  if (near) return `; did you mean \`${near.name}\`? (options use proto field names)`;
  return desc.fields.length > 0 ? `; its fields are ${list(desc.fields.map((f) => f.name))}` : "";
}

/**
 * `(cellar.v1.entity).indexes`: each declaration's fields exist, are indexable (indexes.ts), not sensitive,
 * outside oneofs, listed once; a repeated field only in a single-field index; no index declared twice.
 */
function checkIndexes(
  ext: CellarExtensions,
  desc: DescMessage,
  declarations: readonly string[],
  label: string,
  at: (i: number) => ReturnType<typeof positionOf>,
  d: Diagnostics,
): { indexes: DescField[]; indexSpecs: IndexModel[] } {
  const indexes: DescField[] = [];
  const indexSpecs: IndexModel[] = [];
  declarations.forEach((declaration, i) => {
    const where = at(i);
    const names = indexComponents(declaration);
    const name = names.join(",");
    const compound = names.length > 1;
    // How a message names a component: the index itself when it has one field.
    const of = (n: string) => (compound ? `field \`${n}\` of index \`${name}\`` : `index \`${n}\``);
    if (names.some((n) => n === "")) {
      d.add(where, `index \`${declaration}\` of entity ${label} has an empty field name; name each field once, separated by commas (\`"project_id,created_at"\`)`);
      return;
    }
    const fields: DescField[] = [];
    let ok = true;
    for (const n of names) {
      const field = findField(desc, n);
      if (!field) {
        d.add(where, `${of(n)} of entity ${label} names no field of the message${hint(desc, n)}`);
        ok = false;
      } else if (fields.includes(field)) {
        if (ok) d.add(where, `index \`${name}\` of entity ${label} lists field \`${n}\` twice`);
        ok = false;
      } else {
        fields.push(field);
      }
    }
    if (!ok) return;
    const id = indexId(fields);
    if (indexSpecs.some((s) => s.id === id)) {
      d.add(where, `index \`${name}\` of entity ${label} is listed twice`);
      return;
    }
    for (const field of fields) {
      const n = field.name;
      if (readFieldAnnotations(ext, field)?.sensitive) {
        d.add(
          where,
          `sensitive field \`${n}\` cannot be an index of entity ${label}: index values are readable by every tool that opens the store (sealed under its meta key); remove it from \`indexes\``,
        );
      }
      if (!isIndexableType(field)) {
        d.add(where, `${of(n)} of entity ${label} is \`${describeFieldType(field)}\`, which cannot be indexed; ${indexableKindsText}`);
      } else if (field.oneof) {
        d.add(where, `${of(n)} of entity ${label} is a member of oneof \`${field.oneof.name}\`, which cannot be indexed; index fields outside oneofs`);
      } else if (compound && field.fieldKind === "list") {
        d.add(
          where,
          `${of(n)} of entity ${label} is \`${describeFieldType(field)}\`: a repeated field can only be indexed on its own (\`"${n}"\`), not in a compound index`,
        );
      }
    }
    indexSpecs.push({ id, fields, name });
    for (const f of fields) if (!indexes.includes(f)) indexes.push(f);
  });
  return { indexes, indexSpecs };
}

/** Local-name paths of sensitive fields, through nested messages (a cycle is followed once). */
function sensitivePaths(ext: CellarExtensions, desc: DescMessage): string[] {
  const out: string[] = [];
  const walk = (m: DescMessage, prefix: string, seen: ReadonlySet<string>) => {
    for (const field of m.fields) {
      const local = field.oneof ? `${field.oneof.localName}.${field.localName}` : field.localName;
      const path = prefix + local;
      if (readFieldAnnotations(ext, field)?.sensitive) {
        out.push(path);
        continue;
      }
      const { type } = fieldValueType(field);
      if (type.kind === "message" && !seen.has(type.desc.typeName)) {
        walk(type.desc, path + ".", new Set([...seen, type.desc.typeName]));
      }
    }
  };
  walk(desc, "", new Set([desc.typeName]));
  return out;
}

/** Singleton defaults: annotated fields, and singular message fields whose message has defaults. */
function collectDefaults(ext: CellarExtensions, desc: DescMessage, seen: ReadonlySet<string>): DefaultsTree {
  const entries: { field: DescField; value: DefaultValue | DefaultsTree }[] = [];
  for (const field of desc.fields) {
    const text = readFieldAnnotations(ext, field)?.default ?? "";
    if (text !== "") {
      const parsed = parseDefault(field, text);
      if (typeof parsed !== "string") entries.push({ field, value: parsed });
      continue;
    }
    if (field.fieldKind === "message" && !field.oneof && !seen.has(field.message.typeName)) {
      const { type } = fieldValueType(field);
      if (type.kind !== "message") continue;
      const nested = collectDefaults(ext, field.message, new Set([...seen, field.message.typeName]));
      if (nested.entries.length > 0) entries.push({ field, value: nested });
    }
  }
  return { entries };
}


/**
 * Ranges of well-known types' fields, as protobuf-es's `toJson` (and every other runtime) requires them:
 * a value outside them is stored, then breaks `inspect()` and JSON export. Generated validators and codecs
 * check them like `(cellar.v1.field)` rules. Message-level rules (a `Duration`'s signs, a `Value` holding
 * a kind) are emitted by the generators themselves (see {@link wellKnownMessageRule}).
 */
const WELL_KNOWN_RULES: ReadonlyMap<string, FieldRules> = new Map<string, FieldRules>([
  // 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
  ["google.protobuf.Timestamp.seconds", { required: false, sensitive: false, min: -62135596800, max: 253402300799 }],
  ["google.protobuf.Timestamp.nanos", { required: false, sensitive: false, min: 0, max: 999999999 }],
  // ±10,000 years.
  ["google.protobuf.Duration.seconds", { required: false, sensitive: false, min: -315576000000, max: 315576000000 }],
  ["google.protobuf.Duration.nanos", { required: false, sensitive: false, min: -999999999, max: 999999999 }],
  // JSON has no NaN or Infinity.
  ["google.protobuf.Value.number_value", { required: false, sensitive: false, min: -Number.MAX_VALUE, max: Number.MAX_VALUE }],
]);

/** A message-level rule of a well-known type, checked by generated validators and codecs alike. */
export function wellKnownMessageRule(m: DescMessage): "duration-sign" | "value-kind" | undefined {
  if (m.typeName === "google.protobuf.Duration") return "duration-sign";
  if (m.typeName === "google.protobuf.Value") return "value-kind";
  return undefined;
}

/** `(cellar.v1.field)` rules of the generated files plus the ranges of well-known types' fields. */
class RulesWithWellKnown extends Map<DescField, FieldRules> {
  override get(f: DescField): FieldRules | undefined {
    return super.get(f) ?? WELL_KNOWN_RULES.get(`${f.parent.typeName}.${f.name}`);
  }
}

/** `rules` and the ranges of well-known types' fields (what generated validators and codecs check). */
export function withWellKnownRules(rules: ReadonlyMap<DescField, FieldRules>): ReadonlyMap<DescField, FieldRules> {
  return new RulesWithWellKnown(rules);
}
