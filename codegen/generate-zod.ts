/**
 * Emits `<file>_zod.ts`: one zod schema per message reachable from an entity, validating the
 * *write input* of that message (`MessageInitShape<typeof XSchema>`, or a spread of a message: the
 * runtime's `EntityInput`):
 *
 * - fields are optional unless annotated `required`; unknown keys are rejected; the optional
 *   `$typeName` literal and the `$unknown` fields of a decoded message are accepted;
 * - enums are their numeric values, 64-bit integers `bigint` (or `string` with `jstype = JS_STRING`),
 *   bytes `Uint8Array`, maps plain objects, oneofs `{ case, value }`, wrapper types unboxed and
 *   `google.protobuf.Struct` a JSON object, exactly as protobuf-es represents them;
 * - `(cellar.v1.field)` constraints (lengths, pattern, bounds, max items) are added on top; on a
 *   proto3 field without `optional` that is not `required`, the zero value (`""`, `0`, empty bytes)
 *   means "unset" (protobuf stores nothing for it, and a record read back carries it), so the
 *   constraints do not apply to it (`zeroIsUnset` in model.ts; zod's `when`, with one of the `setX`
 *   helpers emitted at the end).
 *
 * Messages from files that are not generated here (well-known types, dependencies) get a private
 * copy in each file that uses them. Schemas follow descriptor order; a reference to a message
 * declared later (or to one in a cycle) goes through `z.lazy`.
 */
import { ScalarType, type DescField, type DescFile, type DescMessage, type DescOneof } from "@bufbuild/protobuf";
import { getDeclarationString, type GeneratedFile, type Printable } from "@bufbuild/protoplugin";
import { outputImportPath, outputName, shapeName, type EmitContext } from "./context.js";
import { setHeader } from "./header.js";
import { fieldValueType, integerRange, is64Bit, wellKnownMessageRule, withWellKnownRules, zeroIsUnset, type FieldRules, type ValueType } from "./model.js";

/** Name of the exported input schema of a message, e.g. `TaskInputSchema`. */
export function inputSchemaName(f: GeneratedFile, desc: DescMessage): string {
  return `${shapeName(f, desc)}InputSchema`;
}

/** Every message an entity's input can contain, including the entities themselves. */
export function reachableMessages(roots: readonly DescMessage[]): Set<DescMessage> {
  const seen = new Set<DescMessage>();
  const visit = (m: DescMessage) => {
    if (seen.has(m)) return;
    seen.add(m);
    for (const field of m.fields) {
      const { type } = fieldValueType(field);
      if (type.kind === "message") visit(type.desc);
    }
  };
  roots.forEach(visit);
  return seen;
}

function referencedMessages(m: DescMessage): DescMessage[] {
  const out: DescMessage[] = [];
  for (const field of m.fields) {
    const { type } = fieldValueType(field);
    if (type.kind === "message" && !out.includes(type.desc)) out.push(type.desc);
  }
  return out;
}

export function generateZod(ctx: EmitContext): void {
  const { schema, model } = ctx;
  const reachable = reachableMessages(model.entities.map((e) => e.desc));
  const generated = new Set<DescFile>(schema.files);
  for (const file of schema.files) {
    const own: DescMessage[] = [];
    for (const t of schema.typesInFile(file)) {
      if (t.kind === "message" && reachable.has(t)) own.push(t);
    }
    if (own.length === 0) continue;
    const f = schema.generateFile(outputName(file, "zod"));
    setHeader(f, [file], ctx.parameter);
    new ZodFile(f, file, generated, withWellKnownRules(model.rules)).emit(own);
  }
}

class ZodFile {
  private readonly z: Printable;
  private readonly declared = new Set<DescMessage>();
  private readonly foreignNames = new Map<DescMessage, string>();
  private readonly reachCache = new Map<DescMessage, Set<DescMessage>>();
  /** Whether a schema uses the emitted `jsonWellFormed` helper. */
  private usesJson = false;
  /** The `setX` helpers (a rule's `when`: the value is not its type's zero) schemas use. */
  private readonly usesSet = new Set<keyof typeof SET_HELPERS>();

  constructor(
    private readonly f: GeneratedFile,
    private readonly file: DescFile,
    private readonly generatedFiles: ReadonlySet<DescFile>,
    private readonly rules: ReadonlyMap<DescField, FieldRules>,
  ) {
    this.z = f.import("z", "zod");
  }

  emit(own: readonly DescMessage[]): void {
    const { f } = this;
    // Messages from files not generated here (well-known types, dependencies): private copies.
    const foreign = new Set<DescMessage>();
    const collect = (m: DescMessage) => {
      for (const r of referencedMessages(m)) {
        if (this.generatedFiles.has(r.file) || foreign.has(r)) continue;
        foreign.add(r);
        collect(r);
      }
    };
    own.forEach(collect);
    const foreignSorted = [...foreign].sort((a, b) => (a.typeName < b.typeName ? -1 : a.typeName > b.typeName ? 1 : 0));
    for (const m of foreignSorted) this.foreignNames.set(m, `${m.typeName.replace(/\./g, "_")}_InputSchema`);

    f.print(f.jsDoc("`%TypedArray%.prototype.length`: a typed array's internal length (an own `length` property cannot change it)."));
    f.print("const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), \"length\")!.get!;");
    f.print();
    f.print(f.jsDoc("The length of a real `Uint8Array`, else -1 (a Proxy of one, an object inheriting from `Uint8Array.prototype`)."));
    f.print("const realLength = (b: unknown): number => (ArrayBuffer.isView(b) && b instanceof Uint8Array ? (typedArrayLength.call(b) as number) : -1);");
    f.print();
    f.print(f.jsDoc("Unknown fields of a decoded message (`$unknown`), accepted as they are so a read value can be written back."));
    f.print("const unknownFields = ", this.z, ".array(", this.z, ".strictObject({ no: ", this.z, ".number().int(), wireType: ", this.z, ".number().int(), data: ", ...this.bytesSchema(), " })).optional();");
    f.print();
    f.print(f.jsDoc("False for a string holding a lone UTF-16 surrogate: UTF-8 cannot store it (it would come back as U+FFFD)."));
    f.print("const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();");
    f.print();
    for (const m of foreignSorted) {
      f.print(f.jsDoc(`Input of \`${m.typeName}\` (from ${m.file.proto.name}, not generated here).`));
      f.print("const ", this.foreignNames.get(m) ?? "", " = ", this.objectSchema(m), ";");
      f.print();
      this.declared.add(m);
    }
    for (const m of own) {
      f.print(
        f.jsDoc(
          `Validates the write input of \`${m.typeName}\` (an init object, a message, or a spread of one: the runtime's \`EntityInput<typeof ${shapeName(f, m)}Schema>\`) plus its (cellar.v1.field) rules.\n\n@generated from message ${m.typeName}`,
        ),
      );
      f.print(f.export("const", inputSchemaName(f, m)), " = ", this.objectSchema(m), ";");
      f.print();
      this.declared.add(m);
    }
    if (this.usesJson) {
      f.print(f.jsDoc("Whether every string and key of a JSON value (a `google.protobuf.Struct`) is well-formed UTF-16."));
      f.print("function jsonWellFormed(v: unknown): boolean {");
      f.print('  if (typeof v === "string") return isWellFormed(v);');
      f.print('  if (typeof v !== "object" || v === null) return true;');
      f.print("  if (Array.isArray(v)) return v.every(jsonWellFormed);");
      f.print("  for (const [k, x] of Object.entries(v)) if (!isWellFormed(k) || !jsonWellFormed(x)) return false;");
      f.print("  return true;");
      f.print("}");
      f.print();
    }
    for (const name of [...this.usesSet].sort()) {
      f.print(f.jsDoc(`A rule's \`when\`: the value is set (${SET_HELPERS[name].doc}), and no earlier issue stopped the checks (zod's default).`));
      f.print(`function ${name}(p: { value: unknown; aborted?: boolean; issues: readonly { continue?: boolean }[] }): boolean {`);
      f.print(`  return ${SET_HELPERS[name].test} && p.aborted !== true && p.issues.every((i) => i.continue === true);`);
      f.print("}");
      f.print();
    }
  }

  /**
   * `, { when: setX }` for a rule of a value whose zero means unset (see the file comment), else "". zod runs
   * a check's `when` but leaves it out of the parameter types of `regex` and the numeric bounds: `as {}`.
   */
  private when(zeroUnset: boolean, name: keyof typeof SET_HELPERS): string {
    if (!zeroUnset) return "";
    this.usesSet.add(name);
    return `, { when: ${name} } as {}`;
  }

  /** `Uint8Array`, a real one (a Proxy or an object inheriting from `Uint8Array.prototype` is not a view). */
  private bytesSchema(): Printable[] {
    const { z } = this;
    return [z, `.instanceof(Uint8Array).refine((b) => realLength(b) >= 0, { error: "Invalid input: expected Uint8Array" })`];
  }

  private objectSchema(m: DescMessage): Printable[] {
    const { z } = this;
    const p: Printable[] = [z, ".strictObject({\n"];
    p.push(`  $typeName: `, z, `.literal(${JSON.stringify(m.typeName)}).optional(),\n`);
    p.push(`  $unknown: unknownFields,\n`);
    for (const member of m.members) {
      if (member.kind === "oneof") {
        p.push(this.f.jsDoc(`@generated from oneof ${member.parent.typeName}.${member.name}`, "  "), "\n");
        p.push(`  ${propertyName(member.localName)}: `, this.oneofSchema(m, member), ",\n");
      } else {
        p.push(this.f.jsDoc(`@generated from field: ${getDeclarationString(member)};`, "  "), "\n");
        p.push(`  ${propertyName(member.localName)}: `, this.fieldSchema(m, member), ",\n");
      }
    }
    p.push("})");
    switch (wellKnownMessageRule(m)) {
      case "duration-sign":
        // protobuf's Duration: seconds and nanos never have opposite signs.
        p.push(
          `.refine((d) => !(typeof d.seconds === "bigint" && typeof d.nanos === "number" && ((d.seconds > 0n && d.nanos < 0) || (d.seconds < 0n && d.nanos > 0))), { error: "Invalid duration: \`seconds\` and \`nanos\` must have the same sign", path: ["nanos"] })`,
        );
        break;
      case "value-kind":
        // A google.protobuf.Value holds one kind (JSON has no "no value").
        p.push(`.refine((v) => v.kind !== undefined && v.kind.case !== undefined, { error: "Invalid value: \`kind\` must be set", path: ["kind"] })`);
        break;
    }
    return p;
  }

  private oneofSchema(m: DescMessage, oneof: DescOneof): Printable[] {
    const { z } = this;
    const p: Printable[] = [z, `.discriminatedUnion("case", [\n`];
    for (const field of oneof.fields) {
      const { type } = fieldValueType(field);
      p.push("    ", z, `.strictObject({ case: `, z, `.literal(${JSON.stringify(field.localName)}), value: `, this.valueSchema(m, field, type), " }),\n");
    }
    p.push("    ", z, ".strictObject({ case: ", z, ".undefined(), value: ", z, ".undefined().optional() }),\n");
    p.push("  ]).optional()");
    return p;
  }

  private fieldSchema(m: DescMessage, field: DescField): Printable[] {
    const { z } = this;
    const r = this.rules.get(field);
    const required = r?.required ?? false;
    const { container, type } = fieldValueType(field);
    const p: Printable[] = [];
    switch (container) {
      case "singular":
        p.push(this.valueSchema(m, field, type));
        break;
      case "list":
        p.push(z, ".array(", this.valueSchema(m, field, type), ")");
        if (required) p.push(`.min(1, { error: "required: expected at least one element" })`);
        if (r?.maxItems !== undefined) p.push(`.max(${r.maxItems})`);
        break;
      case "map": {
        if (field.fieldKind !== "map") throw new Error("unreachable");
        p.push(z, ".record(", this.mapKeySchema(field.mapKey), ", ", this.valueSchema(m, field, type), ")");
        if (required) {
          p.push(`.refine((m) => Object.keys(m).length >= 1, { error: "required: expected at least one entry" })`);
        }
        if (r?.maxItems !== undefined) {
          p.push(`.refine((m) => Object.keys(m).length <= ${r.maxItems}, { error: "Too big: expected at most ${r.maxItems} entries" })`);
        }
        break;
      }
    }
    if (!required) p.push(".optional()");
    return p;
  }

  /** Schema of one value of a field (the element of a list, the value of a map). */
  private valueSchema(m: DescMessage, field: DescField, type: ValueType): Printable[] {
    const { z } = this;
    const r = this.rules.get(field);
    const required = (r?.required ?? false) && fieldValueType(field).container === "singular";
    const zeroUnset = zeroIsUnset(field, r);
    switch (type.kind) {
      case "json":
        this.usesJson = true;
        return [z, ".record(", z, `.string().refine(isWellFormed, { error: "Invalid key: holds a lone UTF-16 surrogate" }), `, z, `.json()).refine(jsonWellFormed, { error: "Invalid string: holds a lone UTF-16 surrogate" })`];
      case "message":
        return [this.messageRef(m, type.desc)];
      case "enum": {
        const numbers = [...new Set(type.desc.values.map((v) => v.number))].filter((n) => !(required && n === 0));
        if (numbers.length === 0) return [z, ".never()"];
        return [z, `.literal([${numbers.join(", ")}])`];
      }
      case "scalar":
        return this.scalarSchema(type.scalar, type.longAsString, r, required, zeroUnset);
    }
  }

  private scalarSchema(scalar: ScalarType, longAsString: boolean, r: FieldRules | undefined, required: boolean, zeroUnset: boolean): Printable[] {
    const { z } = this;
    switch (scalar) {
      case ScalarType.STRING: {
        const p: Printable[] = [z, ".string()", WELL_FORMED];
        const when = this.when(zeroUnset, "setString");
        if (required && (r?.minLength ?? 0) < 1) p.push(`.min(1, { error: "required: expected a non-empty string" })`);
        if (r?.minLength !== undefined) p.push(`.min(${r.minLength}${when})`);
        if (r?.maxLength !== undefined) p.push(`.max(${r.maxLength})`);
        if (r?.pattern !== undefined) p.push(`.regex(new RegExp(${JSON.stringify(r.pattern)})${when})`);
        return p;
      }
      case ScalarType.BYTES: {
        const p: Printable[] = this.bytesSchema();
        // Measured by the internal length: zod runs these even after the check above failed.
        if (required && (r?.minLength ?? 0) < 1) p.push(`.refine((b) => realLength(b) >= 1, { error: "required: expected at least one byte" })`);
        const unset = zeroUnset ? "realLength(b) === 0 || " : "";
        if (r?.minLength !== undefined) p.push(`.refine((b) => ${unset}realLength(b) >= ${r.minLength}, { error: "Too small: expected at least ${r.minLength} bytes" })`);
        if (r?.maxLength !== undefined) p.push(`.refine((b) => realLength(b) <= ${r.maxLength}, { error: "Too big: expected at most ${r.maxLength} bytes" })`);
        return p;
      }
      case ScalarType.BOOL:
        return [z, ".boolean()"];
      case ScalarType.FLOAT:
      case ScalarType.DOUBLE: {
        // A finite float beyond float32's range cannot be encoded (protobuf-es throws): refused here instead.
        const f32: Printable[] =
          scalar === ScalarType.FLOAT
            ? [`.refine((v) => !Number.isFinite(v) || (v <= 3.4028234663852886e38 && v >= -3.4028234663852886e38), { error: "Too big: expected a float32 value (at most 3.4028234663852886e38 in magnitude)" })`]
            : [];
        if (r?.min === undefined && r?.max === undefined) {
          // Any number, NaN and ±Infinity included, as protobuf allows.
          return [z, `.custom<number>((v) => typeof v === "number", { error: "Invalid input: expected number" })`, ...f32];
        }
        const p: Printable[] = [z, ".number()"];
        const when = this.when(zeroUnset, "setFloat");
        if (r.min !== undefined) p.push(`.min(${r.min}${when})`);
        if (r.max !== undefined) p.push(`.max(${r.max}${when})`);
        return [...p, ...f32];
      }
      default: {
        const range = integerRange(scalar);
        if (!range) throw new Error(`unexpected scalar ${ScalarType[scalar]}`);
        let [lo, hi] = range;
        if (r?.min !== undefined && BigInt(r.min) > lo) lo = BigInt(r.min);
        if (r?.max !== undefined && BigInt(r.max) < hi) hi = BigInt(r.max);
        // The rule's bounds, apart from the type's, when zero (unset) passes them whatever they say.
        const apart = zeroUnset && (lo !== range[0] || hi !== range[1]);
        if (is64Bit(scalar)) {
          if (longAsString) {
            // zod runs a refinement even after the regex failed: the refinement checks the form again, so BigInt never throws.
            const inRule = `BigInt(s) >= ${lo}n && BigInt(s) <= ${hi}n`;
            const test = apart ? `BigInt(s) >= ${range[0]}n && BigInt(s) <= ${range[1]}n && (BigInt(s) === 0n || (${inRule}))` : inRule;
            return [z, `.string().regex(/^-?[0-9]+$/).refine((s) => /^-?[0-9]+$/.test(s) && ${test}, { error: "Invalid input: expected an integer between ${lo} and ${hi}" })`];
          }
          if (!apart) return [z, `.bigint().min(${lo}n).max(${hi}n)`];
          const when = this.when(true, "setBigint");
          return [z, `.bigint().min(${range[0]}n).max(${range[1]}n)`, ...(lo !== range[0] ? [`.min(${lo}n${when})`] : []), ...(hi !== range[1] ? [`.max(${hi}n${when})`] : [])];
        }
        if (!apart) return [z, `.number().int().min(${lo}).max(${hi})`];
        const when = this.when(true, "setInteger");
        return [z, `.number().int().min(${range[0]}).max(${range[1]})`, ...(lo !== range[0] ? [`.min(${lo}${when})`] : []), ...(hi !== range[1] ? [`.max(${hi}${when})`] : [])];
      }
    }
  }

  private mapKeySchema(key: ScalarType): Printable[] {
    const { z } = this;
    if (key === ScalarType.STRING) return [z, `.string().refine(isWellFormed, { error: "Invalid key: holds a lone UTF-16 surrogate" })`];
    if (key === ScalarType.BOOL) return [z, `.string().regex(/^(true|false)$/)`];
    const range = integerRange(key);
    if (!range) throw new Error(`unexpected map key ${ScalarType[key]}`);
    const [lo, hi] = range;
    // zod runs a refinement even after the regex failed: the refinement checks the form again, so BigInt never throws.
  return [z, `.string().regex(/^-?(0|[1-9][0-9]*)$/).refine((k) => /^-?(0|[1-9][0-9]*)$/.test(k) && BigInt(k) >= ${lo}n && BigInt(k) <= ${hi}n, { error: "Invalid key: expected an integer between ${lo} and ${hi}" })`];
  }

  /** A reference to another message's input schema: direct, or through `z.lazy` when not declared yet. */
  private messageRef(from: DescMessage, target: DescMessage): Printable {
    const { z } = this;
    let ref: Printable;
    let sameFile = false;
    const foreign = this.foreignNames.get(target);
    if (foreign !== undefined) {
      ref = foreign;
      sameFile = true;
    } else if (target.file === this.file) {
      ref = inputSchemaName(this.f, target);
      sameFile = true;
    } else {
      ref = this.f.import(inputSchemaName(this.f, target), outputImportPath(target.file, "zod"));
    }
    if (this.reaches(target, from)) {
      // A cycle: TypeScript cannot infer a type that contains itself, so this edge is typed loosely.
      return [z, ".lazy((): ", z, ".ZodType => ", ref, ")"];
    }
    if (sameFile && !this.declared.has(target)) {
      return [z, ".lazy(() => ", ref, ")"];
    }
    return ref;
  }

  /** Whether `to` is reachable from `from` through message fields. */
  private reaches(from: DescMessage, to: DescMessage): boolean {
    let set = this.reachCache.get(from);
    if (!set) {
      set = new Set();
      const stack = referencedMessages(from);
      while (stack.length > 0) {
        const m = stack.pop();
        if (!m || set.has(m)) continue;
        set.add(m);
        stack.push(...referencedMessages(m));
      }
      this.reachCache.set(from, set);
    }
    return set.has(to);
  }
}

/** The refinement of every string field: no lone surrogate. */
/** The `when` helpers of rules on implicit-presence fields: each tests that a value is not its type's zero. */
const SET_HELPERS = {
  setString: { test: `p.value !== ""`, doc: "not the empty string" },
  setFloat: { test: `!Object.is(p.value, 0)`, doc: "not 0; -0 is stored, so it is set" },
  setInteger: { test: `p.value !== 0`, doc: "not 0" },
  setBigint: { test: `p.value !== 0n`, doc: "not 0n" },
} as const;

const WELL_FORMED = `.refine(isWellFormed, { error: "Invalid string: holds a lone UTF-16 surrogate" })`;

/** Object literal key for a local name (protobuf-es local names are identifiers, but be safe). */
export function propertyName(localName: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(localName) ? localName : JSON.stringify(localName);
}
