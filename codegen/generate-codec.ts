/**
 * Emits `<file>_codec.ts`: per entity declared in the file, an `EntityCodec` (src/runtime/format/protowire.ts),
 * a fast path beside protobuf-es for the records of that entity:
 *
 * - `encode(w, input)` checks a write's input exactly as the entity's zod validator (generate-zod.ts)
 *   would, and writes the bytes `toBinary(create(schema, input))` writes, in one walk over the input;
 * - `decode(bytes)` builds the object `fromBinary(schema, bytes)` builds.
 *
 * Both answer "not here" (`false` / `undefined`) for what they do not take, and the runtime then takes
 * the general path. Not taken: map fields, unboxed wrapper fields, `google.protobuf.Struct` fields and
 * 64-bit integers with `jstype = JS_STRING` (a set one sends the whole record to the general path), and
 * messages outside proto3 files (their entity gets no codec: proto2 and editions presence and defaults
 * live on prototypes). Every message an entity reaches gets private functions in the file, named after
 * its full type name, so no file imports another's codec.
 */
import { ScalarType, type DescField, type DescMessage, type DescOneof } from "@bufbuild/protobuf";
import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import { importRuntime, outputName, shapeName, type EmitContext } from "./context.js";
import { reachableMessages } from "./generate-zod.js";
import { setHeader } from "./header.js";
import { fieldValueType, integerRange, is64Bit, wellKnownMessageRule, withWellKnownRules, zeroIsUnset, type EntityModel, type FieldRules, type ValueType } from "./model.js";

/** `Edition.EDITION_PROTO3`: the only syntax whose presence rules the emitted code knows. */
const EDITION_PROTO3 = 999;
/** `FeatureSet.FieldPresence.IMPLICIT`. */
const IMPLICIT = 2;
const FLOAT32_MAX = "3.4028234663852886e38";

/** Whether an entity gets a codec: its message and every message it reaches come from proto3 files. */
export function hasCodec(entity: EntityModel): boolean {
  return [...reachableMessages([entity.desc])].every((m) => m.file.edition === EDITION_PROTO3);
}

/** Name of the exported codec of an entity, e.g. `TaskCodec`. */
export function codecName(f: GeneratedFile, desc: DescMessage): string {
  return `${shapeName(f, desc)}Codec`;
}

export function generateCodecs(ctx: EmitContext): void {
  const { schema, model } = ctx;
  for (const file of schema.files) {
    const entities = model.entities.filter((e) => e.desc.file === file && hasCodec(e));
    if (entities.length === 0) continue;
    const f = schema.generateFile(outputName(file, "codec"));
    setHeader(f, [file], ctx.parameter);
    new CodecFile(f, ctx, withWellKnownRules(model.rules)).emit(entities);
  }
}

/** How a scalar is checked, tested for presence and written/read. */
interface ScalarCodec {
  wireType: number;
  write: string;
  read: string;
  /** Packable in a repeated field. */
  packed: boolean;
}

function scalarCodec(s: ScalarType): ScalarCodec {
  switch (s) {
    case ScalarType.DOUBLE:
      return { wireType: 1, write: "double", read: "r.double()", packed: true };
    case ScalarType.FLOAT:
      return { wireType: 5, write: "float", read: "r.float()", packed: true };
    case ScalarType.INT64:
      return { wireType: 0, write: "int64", read: "r.int64()", packed: true };
    case ScalarType.UINT64:
      return { wireType: 0, write: "int64", read: "r.uint64()", packed: true };
    case ScalarType.INT32:
      return { wireType: 0, write: "int32", read: "r.int32()", packed: true };
    case ScalarType.FIXED64:
      return { wireType: 1, write: "fixed64", read: "r.fixed64()", packed: true };
    case ScalarType.FIXED32:
      return { wireType: 5, write: "fixed32", read: "r.fixed32()", packed: true };
    case ScalarType.BOOL:
      return { wireType: 0, write: "bool", read: "r.bool()", packed: true };
    case ScalarType.STRING:
      return { wireType: 2, write: "string", read: "r.string(end)", packed: false };
    case ScalarType.BYTES:
      return { wireType: 2, write: "bytes", read: "r.bytes(end)", packed: false };
    case ScalarType.UINT32:
      return { wireType: 0, write: "uint32", read: "r.uint32()", packed: true };
    case ScalarType.SFIXED32:
      return { wireType: 5, write: "sfixed32", read: "r.sfixed32()", packed: true };
    case ScalarType.SFIXED64:
      return { wireType: 1, write: "fixed64", read: "r.sfixed64()", packed: true };
    case ScalarType.SINT32:
      return { wireType: 0, write: "sint32", read: "r.sint32()", packed: true };
    case ScalarType.SINT64:
      return { wireType: 0, write: "sint64", read: "r.sint64()", packed: true };
  }
}

const tag = (field: DescField, wireType: number): number => ((field.number << 3) | wireType) >>> 0;

/** `o.name`, or `o["name"]` for a local name that is not an identifier. */
function prop(obj: string, name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `${obj}.${name}` : `${obj}[${JSON.stringify(name)}]`;
}

/** Whether the emitted code handles values of this type (otherwise a set value takes the general path). */
function supported(field: DescField, type: ValueType, container: string): boolean {
  if (container === "map") return false;
  if (type.kind === "json") return false;
  if (type.kind === "scalar" && field.fieldKind === "message") return false; // an unboxed wrapper
  if (type.kind === "scalar" && type.longAsString) return false;
  return true;
}

class CodecFile {
  private readonly names = new Map<DescMessage, string>();
  private readonly constants: string[] = [];
  /** Whether some check measures a string in code points (then `codePointLength` is emitted). */
  private needsCodePoints = false;
  /** Whether some check measures bytes (then `realLength` is emitted). */
  private needsBytesLength = false;
  private readonly body: Printable[][] = [];
  private readonly rt: {
    ProtoWriter: Printable;
    ProtoReader: Printable;
    EntityCodec: Printable;
    encodeWith: Printable;
    decodeWith: Printable;
    isPlainObject: Printable;
    noUnknownFields: Printable;
    MAX_DEPTH: Printable;
    bytesLength: Printable;
  };
  /** Per entity root message: the fields whose values the encoder hands to the store (key and indexed fields). */
  private readonly captured = new Map<DescMessage, Set<DescField>>();
  /**
   * Message types of captured fields (`Timestamp`, `Duration` indexes): their encoders take an `into` object
   * and copy each field they read into it, so the store indexes the values that were checked and written,
   * not a second read of the input (a getter or a Proxy could answer differently).
   */
  private readonly capturedMessages = new Set<DescMessage>();

  constructor(
    private readonly f: GeneratedFile,
    ctx: EmitContext,
    private readonly rules: ReadonlyMap<DescField, FieldRules>,
  ) {
    this.rt = {
      ProtoWriter: importRuntime(f, ctx, "ProtoWriter", true),
      ProtoReader: importRuntime(f, ctx, "ProtoReader"),
      EntityCodec: importRuntime(f, ctx, "EntityCodec", true),
      encodeWith: importRuntime(f, ctx, "encodeWith"),
      decodeWith: importRuntime(f, ctx, "decodeWith"),
      isPlainObject: importRuntime(f, ctx, "isPlainObject"),
      noUnknownFields: importRuntime(f, ctx, "noUnknownFields"),
      MAX_DEPTH: importRuntime(f, ctx, "MAX_DEPTH"),
      bytesLength: importRuntime(f, ctx, "bytesLength"),
    };
  }

  emit(entities: readonly EntityModel[]): void {
    const { f, rt } = this;
    const messages = [...reachableMessages(entities.map((e) => e.desc))].sort((a, b) => (a.typeName < b.typeName ? -1 : a.typeName > b.typeName ? 1 : 0));
    for (const m of messages) this.names.set(m, m.typeName.replace(/\./g, "_"));
    for (const e of entities) {
      if (e.kind !== "collection") continue;
      let set = this.captured.get(e.desc);
      if (!set) this.captured.set(e.desc, (set = new Set()));
      for (const f of [e.key, ...e.indexes]) {
        set.add(f);
        if (f.fieldKind === "message") this.capturedMessages.add(f.message);
      }
    }
    for (const m of messages) {
      this.body.push(this.zero(m), this.encoder(m), this.decoder(m), this.freezer(m));
    }
    if (this.needsCodePoints) f.print(CODE_POINT_LENGTH);
    if (this.needsBytesLength) {
      f.print(f.jsDoc("The length of a real `Uint8Array` (its internal one, whatever its `length` property says), else -1."));
      f.print("const realLength: (v: unknown) => number = ", rt.bytesLength, ";");
      f.print();
    }
    for (const c of this.constants) f.print(c);
    if (this.constants.length) f.print();
    for (const p of this.body) {
      f.print(...p);
      f.print();
    }
    for (const e of entities) {
      const n = this.names.get(e.desc)!;
      f.print(f.jsDoc(`Fast encoder and decoder of \`${e.name}\` records (\`${e.desc.typeName}\`); see the runtime's \`EntityCodec\`.`));
      f.print(f.export("const", codecName(f, e.desc)), ": ", rt.EntityCodec, " = {");
      f.print("  encode: (w, input) => ", rt.encodeWith, "(w, input, encode_", n, "),");
      f.print("  decode: (bytes) => ", rt.decodeWith, "(bytes, decode_", n, ", zero_", n, ", freeze_", n, "),");
      f.print("};");
      f.print();
    }
  }

  private constant(prefix: string, value: string): string {
    const name = `${prefix}_${this.constants.length}`;
    this.constants.push(`const ${name} = ${value};`);
    return name;
  }

  // ------------------------------------------------------------------ zero message

  /** `zero_X()`: what `create(XSchema)` returns, with the same properties in the same order. */
  private zero(m: DescMessage): Printable[] {
    const n = this.names.get(m)!;
    const parts: string[] = [`$typeName: ${JSON.stringify(m.typeName)}`];
    for (const member of m.members) {
      if (member.kind === "oneof") {
        parts.push(`${propKey(member.localName)}: { case: undefined }`);
        continue;
      }
      switch (member.fieldKind) {
        case "list":
          parts.push(`${propKey(member.localName)}: []`);
          break;
        case "map":
          parts.push(`${propKey(member.localName)}: {}`);
          break;
        case "message":
          break; // absent until set
        case "enum":
          if (member.presence === IMPLICIT) parts.push(`${propKey(member.localName)}: ${member.enum.values[0]!.number}`);
          break;
        case "scalar":
          if (member.presence === IMPLICIT) parts.push(`${propKey(member.localName)}: ${scalarZero(member.scalar, member.longAsString)}`);
          break;
      }
    }
    return [`function zero_${n}(): any {\n  return { ${parts.join(", ")} };\n}`];
  }

  // ------------------------------------------------------------------ encoder

  private encoder(m: DescMessage): Printable[] {
    const { rt } = this;
    const n = this.names.get(m)!;
    const lines: Printable[] = [];
    const out = (...p: Printable[]) => lines.push(...p, "\n");
    const into = this.capturedMessages.has(m);
    out("function encode_", n, "(w: ", rt.ProtoWriter, ", o: any", into ? ", into?: any" : "", "): boolean {");
    out("  if (!", rt.isPlainObject, "(o) || ++w.depth > ", rt.MAX_DEPTH, ") return false;");
    // Which members are enumerable own keys: zod reads a member whatever its enumerability, but the general
    // path (`toInit`, `Object.entries`) copies only enumerable ones, so a set non-enumerable member goes there.
    const words = Math.ceil(m.members.length / 31);
    if (words > 0) out(`  let ${Array.from({ length: words }, (_, i) => `s${i} = 0`).join(", ")};`);
    out("  for (const k in o) {");
    out("    switch (k) {");
    out("      case \"$typeName\":");
    out("      case \"$unknown\":");
    out("        break;");
    m.members.forEach((member, i) => {
      out(`      case ${JSON.stringify(member.localName)}:`);
      if (member.kind === "field" && !member.oneof && !supported(member, fieldValueType(member).type, fieldValueType(member).container)) {
        // A field this code does not take: the general path, before any value is read (it reads them once).
        out("        return false;");
        return;
      }
      out(`        ${seenBit(i).replace(" & ", " |= ")};`);
      out("        break;");
    });
    out("      default:");
    out("        return false;");
    out("    }");
    out("  }");
    // Read whether enumerable or not, as zod does.
    out(`  if (o.$typeName !== undefined && o.$typeName !== ${JSON.stringify(m.typeName)}) return false;`);
    out("  if (!", rt.noUnknownFields, "(o.$unknown)) return false;");
    out("  let v: any;");
    // Oneof groups are checked once, up front; each member is written at its field number.
    for (const oneof of m.oneofs) this.oneofCheck(oneof, out);
    const sorted = m.fields.concat().sort((a, b) => a.number - b.number);
    for (const field of sorted) this.fieldEncoder(field, out);
    switch (wellKnownMessageRule(m)) {
      case "duration-sign":
        out("  if (typeof seconds_ === \"bigint\" && typeof nanos_ === \"number\" && ((seconds_ > 0n && nanos_ < 0) || (seconds_ < 0n && nanos_ > 0))) return false;");
        break;
      case "value-kind":
        out(`  if (${caseVar(m.oneofs[0]!)} === undefined) return false;`);
        break;
    }
    out("  w.depth--;");
    out("  return true;");
    lines.push("}");
    return lines;
  }

  private oneofCheck(oneof: DescOneof, out: (...p: Printable[]) => void): void {
    const { rt } = this;
    const v = `oneof_${oneof.localName}`;
    const c = `case_${oneof.localName}`;
    out(`  const ${v}: any = ${prop("o", oneof.localName)};`);
    out(`  let ${caseVar(oneof)}: any, ${valueVar(oneof)}: any;`);
    out(`  if (${v} !== undefined) {`);
    out(`    if (!(${seenBit(oneof.parent.members.indexOf(oneof))}) || !`, rt.isPlainObject, `(${v})) return false;`);
    // 1: `case` is an enumerable own key, 2: `value` is (what `toInit` copies).
    out(`    let ${c} = 0;`);
    out(`    for (const k in ${v}) {`);
    out(`      if (k === "case") ${c} |= 1;`);
    out(`      else if (k === "value") ${c} |= 2;`);
    out("      else return false;");
    out("    }");
    // `case` and `value` are read once each (a getter could answer differently the second time).
    out(`    ${caseVar(oneof)} = ${v}.case;`);
    out(`    ${valueVar(oneof)} = ${v}.value;`);
    out(`    if (${valueVar(oneof)} !== undefined && !(${c} & 2)) return false;`);
    out(`    switch (${caseVar(oneof)}) {`);
    out("      case undefined:");
    out(`        if (!(${c} & 1) || ${valueVar(oneof)} !== undefined) return false;`);
    out("        break;");
    for (const field of oneof.fields) out(`      case ${JSON.stringify(field.localName)}:`);
    if (oneof.fields.length) {
      out(`        if (!(${c} & 1)) return false;`);
      out("        break;");
    }
    out("      default:");
    out("        return false;");
    out("    }");
    out("  }");
  }

  private fieldEncoder(field: DescField, out: (...p: Printable[]) => void): void {
    const r = this.rules.get(field);
    const required = r?.required ?? false;
    const { container, type } = fieldValueType(field);
    out(`  // ${field.name} = ${field.number}`);
    if (field.oneof) {
      const v = `oneof_${field.oneof.localName}`;
      out(`  if (${v} !== undefined && ${caseVar(field.oneof)} === ${JSON.stringify(field.localName)}) {`);
      if (!supported(field, type, container)) {
        out("    return false;");
      } else {
        out(`    v = ${valueVar(field.oneof)};`);
        this.writeValue(field, type, r, required, "    ", out);
      }
      out("  }");
      return;
    }
    out(`  v = ${prop("o", field.localName)};`);
    if (this.capturedMessages.has(field.parent)) out(`  if (into !== undefined && v !== undefined) ${prop("into", field.localName)} = v;`);
    const capture = this.captured.get(field.parent)?.has(field) ?? false;
    if (capture && container !== "list" && type.kind !== "message") out(`  if (w.depth === 1) ${prop("w.top", field.localName)} = v;`);
    if (wellKnownMessageRule(field.parent) === "duration-sign") out(`  const ${field.localName}_: any = v;`);
    if (!supported(field, type, container)) {
      out(required ? "  return false;" : "  if (v !== undefined) return false;");
      return;
    }
    // A required field must be set; an optional one is checked and written only when set, and only from an
    // enumerable own property (the general path drops the others).
    const seen = seenBit(field.parent.members.indexOf(field));
    const ind = required ? "  " : "    ";
    if (required) out(`  if (v === undefined || !(${seen})) return false;`);
    else {
      out("  if (v !== undefined) {");
      out(`    if (!(${seen})) return false;`);
    }
    if (container === "list") this.listEncoder(field, type, r, required, ind, out, capture);
    else if (type.kind === "message" || field.presence !== IMPLICIT) this.writeValue(field, type, r, required, ind, out);
    else {
      // Implicit presence: a zero value is not written (as protobuf-es's toBinary does on the created message).
      const c = scalarOrEnum(type);
      // The zero value is unset, and rules that would refuse it do not apply to it (model.ts `zeroIsUnset`).
      const zero = zeroIsUnset(field, r) ? implicitZero(type) : undefined;
      const check = this.check("v", type, r, required);
      out(`${ind}if (!(${zero ? `${zero} || (${check})` : check})) return false;`);
      out(`${ind}if (${implicitSet(type)}) {`);
      out(`${ind}  w.uint32(${tag(field, c.wireType)});`);
      out(`${ind}  w.${c.write}(v);`);
      out(`${ind}}`);
    }
    if (!required) out("  }");
  }

  /** Check and write `v` (a value that is written whenever it is set: explicit presence, oneof member, message). */
  private writeValue(field: DescField, type: ValueType, r: FieldRules | undefined, required: boolean, ind: string, out: (...p: Printable[]) => void): void {
    if (type.kind === "message") {
      out(`${ind}w.uint32(${tag(field, 2)});`);
      out(`${ind}const at${field.number} = w.fork();`);
      const m = this.names.get(type.desc);
      if (this.captured.get(field.parent)?.has(field)) {
        // What the message's encoder reads, on a zero message (what the general path's created message holds).
        out(`${ind}if (!encode_${m}(w, v, w.depth === 1 ? (${prop("w.top", field.localName)} = zero_${m}()) : undefined)) return false;`);
      } else {
        out(`${ind}if (!encode_${m}(w, v)) return false;`);
      }
      out(`${ind}w.join(at${field.number});`);
      return;
    }
    const c = scalarOrEnum(type);
    out(`${ind}if (!(${this.check("v", type, r, required)})) return false;`);
    out(`${ind}w.uint32(${tag(field, c.wireType)});`);
    out(`${ind}w.${c.write}(v);`);
  }

  private listEncoder(
    field: DescField,
    type: ValueType,
    r: FieldRules | undefined,
    required: boolean,
    ind: string,
    out: (...p: Printable[]) => void,
    /** Hand a copy of the elements read to the store (`w.top`), for an index at the root message. */
    capture: boolean,
  ): void {
    // The length and each element are read once (a Proxy or a getter could answer differently the second time).
    out(`${ind}if (!Array.isArray(v)) return false;`);
    out(`${ind}const n${field.number}: number = v.length;`);
    const n = `n${field.number}`;
    const conds: string[] = [];
    if (required) conds.push(`${n} < 1`);
    if (r?.maxItems !== undefined) conds.push(`${n} > ${r.maxItems}`);
    if (conds.length) out(`${ind}if (${conds.join(" || ")}) return false;`);
    if (type.kind === "message") {
      out(`${ind}for (let i = 0; i < ${n}; i++) {`);
      out(`${ind}  w.uint32(${tag(field, 2)});`);
      out(`${ind}  const at = w.fork();`);
      out(`${ind}  if (!encode_${this.names.get(type.desc)}(w, v[i])) return false;`);
      out(`${ind}  w.join(at);`);
      out(`${ind}}`);
      return;
    }
    const c = scalarOrEnum(type);
    if (capture) out(`${ind}const c${field.number}: any[] | undefined = w.depth === 1 ? (${prop("w.top", field.localName)} = []) : undefined;`);
    const push = capture ? `${ind}  if (c${field.number}) c${field.number}.push(e);` : undefined;
    // Element rules: as zod's valueSchema for a list element (`required` applies to the list, not elements).
    const check = this.check("e", type, r, false);
    if (field.fieldKind === "list" && field.packed && c.packed) {
      // Checked and written in one loop: a failed check discards what was written.
      out(`${ind}if (${n} > 0) {`);
      out(`${ind}  w.uint32(${tag(field, 2)});`);
      out(`${ind}  const at = w.fork();`);
      out(`${ind}  for (let i = 0; i < ${n}; i++) {`);
      out(`${ind}    const e = v[i];`);
      out(`${ind}    if (!(${check})) return false;`);
      if (push) out("  " + push);
      out(`${ind}    w.${c.write}(e);`);
      out(`${ind}  }`);
      out(`${ind}  w.join(at);`);
      out(`${ind}}`);
    } else {
      out(`${ind}for (let i = 0; i < ${n}; i++) {`);
      out(`${ind}  const e = v[i];`);
      out(`${ind}  if (!(${check})) return false;`);
      if (push) out(push);
      out(`${ind}  w.uint32(${tag(field, c.wireType)});`);
      out(`${ind}  w.${c.write}(e);`);
      out(`${ind}}`);
    }
  }

  /** A boolean expression: `v` passes the zod check generate-zod.ts emits for this value. */
  private check(v: string, type: ValueType, r: FieldRules | undefined, required: boolean): string {
    if (type.kind === "enum") {
      const numbers = [...new Set(type.desc.values.map((x) => x.number))].filter((x) => !(required && x === 0));
      if (numbers.length === 0) return "false";
      if (numbers.length <= 8) return numbers.map((x) => `${v} === ${x}`).join(" || ");
      return `${this.constant("ENUM", `new Set([${numbers.join(", ")}])`)}.has(${v})`;
    }
    if (type.kind !== "scalar") throw new Error("unreachable: messages are checked by their encoder");
    const s = type.scalar;
    const conds: string[] = [];
    switch (s) {
      case ScalarType.STRING:
        conds.push(`typeof ${v} === "string"`, `(${v} as any).isWellFormed()`);
        if (required && (r?.minLength ?? 0) < 1) conds.push(`${v}.length >= 1`);
        // zod counts code points, not UTF-16 units (a pair is two units): count them only when units cannot tell.
        if (r?.minLength === 1) conds.push(`${v}.length >= 1`);
        else if (r?.minLength !== undefined && r.minLength > 1) {
          this.needsCodePoints = true;
          conds.push(`(${v}.length >= ${2 * r.minLength} || (${v}.length >= ${r.minLength} && codePointLength(${v}) >= ${r.minLength}))`);
        }
        if (r?.maxLength !== undefined) {
          this.needsCodePoints = true;
          conds.push(`(${v}.length <= ${r.maxLength} || codePointLength(${v}) <= ${r.maxLength})`);
        }
        if (r?.pattern !== undefined) conds.push(`${this.constant("PATTERN", `new RegExp(${JSON.stringify(r.pattern)})`)}.test(${v})`);
        break;
      case ScalarType.BYTES:
        {
          // A real Uint8Array measured by its internal length (-1 otherwise: a Proxy, a lying `length`).
          this.needsBytesLength = true;
          const len = `realLength(${v})`;
          conds.push(`${len} >= 0`);
          if (required && (r?.minLength ?? 0) < 1) conds.push(`${len} >= 1`);
          if (r?.minLength !== undefined) conds.push(`${len} >= ${r.minLength}`);
          if (r?.maxLength !== undefined) conds.push(`${len} <= ${r.maxLength}`);
        }
        break;
      case ScalarType.BOOL:
        conds.push(`typeof ${v} === "boolean"`);
        break;
      case ScalarType.FLOAT:
      case ScalarType.DOUBLE:
        conds.push(`typeof ${v} === "number"`);
        if (r?.min !== undefined || r?.max !== undefined) {
          conds.push(`Number.isFinite(${v})`);
          if (r.min !== undefined) conds.push(`${v} >= ${r.min}`);
          if (r.max !== undefined) conds.push(`${v} <= ${r.max}`);
        }
        // protobuf-es refuses a finite float outside float32's range: leave that to the general path.
        if (s === ScalarType.FLOAT) conds.push(`(!Number.isFinite(${v}) || (${v} <= ${FLOAT32_MAX} && ${v} >= -${FLOAT32_MAX}))`);
        break;
      default: {
        const range = integerRange(s);
        if (!range) throw new Error(`unexpected scalar ${ScalarType[s]}`);
        let [lo, hi] = range;
        if (r?.min !== undefined && BigInt(r.min) > lo) lo = BigInt(r.min);
        if (r?.max !== undefined && BigInt(r.max) < hi) hi = BigInt(r.max);
        if (is64Bit(s)) conds.push(`typeof ${v} === "bigint"`, `${v} >= ${lo}n`, `${v} <= ${hi}n`);
        else conds.push(`typeof ${v} === "number"`, `Number.isInteger(${v})`, `${v} >= ${lo}`, `${v} <= ${hi}`);
      }
    }
    return conds.join(" && ");
  }

  // ------------------------------------------------------------------ freezing

  /**
   * `freeze_X(m)`: freeze a message the decoder built and everything in it, field by field (the runtime's
   * generic walk enumerates keys). Map, wrapper and Struct fields never hold anything here: bytes that set
   * them go to `fromBinary`.
   */
  private freezer(m: DescMessage): Printable[] {
    const n = this.names.get(m)!;
    const lines: string[] = [`function freeze_${n}(m: any): any {`];
    for (const member of m.members) {
      if (member.kind === "oneof") {
        const o = prop("m", member.localName);
        const msgs = member.fields.filter((f) => f.fieldKind === "message" && fieldValueType(f).type.kind === "message");
        for (const f of msgs) {
          const t = fieldValueType(f).type as Extract<ValueType, { kind: "message" }>;
          lines.push(`  if (${o}.case === ${JSON.stringify(f.localName)}) freeze_${this.names.get(t.desc)}(${o}.value);`);
        }
        lines.push(`  Object.freeze(${o});`);
        continue;
      }
      const { container, type } = fieldValueType(member);
      const v = prop("m", member.localName);
      if (container === "list") {
        if (type.kind === "message") lines.push(`  for (const e of ${v}) freeze_${this.names.get(type.desc)}(e);`);
        lines.push(`  Object.freeze(${v});`);
      } else if (container === "map") {
        lines.push(`  Object.freeze(${v});`);
      } else if (type.kind === "message" && supported(member, type, container)) {
        lines.push(`  if (${v} !== undefined) freeze_${this.names.get(type.desc)}(${v});`);
      }
    }
    lines.push("  return Object.freeze(m);", "}");
    return [lines.join("\n")];
  }

  // ------------------------------------------------------------------ decoder

  private decoder(m: DescMessage): Printable[] {
    const { rt } = this;
    const n = this.names.get(m)!;
    const lines: Printable[] = [];
    const out = (...p: Printable[]) => lines.push(...p, "\n");
    out("function decode_", n, "(r: ", rt.ProtoReader, ", end: number, m: any): any {");
    out("  r.enter();");
    out("  while (r.pos < end) {");
    out("    switch (r.tag()) {");
    for (const field of m.fields) this.fieldDecoder(field, out);
    out("      default:");
    out("        ", rt.ProtoReader, ".unexpected();");
    out("    }");
    out("  }");
    out("  if (r.pos !== end) ", rt.ProtoReader, ".unexpected();");
    out("  r.depth--;");
    out("  return m;");
    lines.push("}");
    return lines;
  }

  private fieldDecoder(field: DescField, out: (...p: Printable[]) => void): void {
    const { container, type } = fieldValueType(field);
    if (!supported(field, type, container)) return; // its tags fall to `default`
    const name = prop("m", field.localName);
    if (type.kind === "message") {
      const child = this.names.get(type.desc)!;
      out(`      case ${tag(field, 2)}: {`);
      out("        const e = r.len(end);");
      if (container === "list") {
        out(`        ${name}.push(decode_${child}(r, e, zero_${child}()));`);
      } else if (field.oneof) {
        const o = prop("m", field.oneof.localName);
        const c = JSON.stringify(field.localName);
        out(`        ${o} = { case: ${c}, value: decode_${child}(r, e, ${o}.case === ${c} ? ${o}.value : zero_${child}()) };`);
      } else {
        // A repeated occurrence merges into the message read so far, as protobuf does.
        out(`        ${name} = decode_${child}(r, e, ${name} ?? zero_${child}());`);
      }
      out("        break;");
      out("      }");
      return;
    }
    const c = scalarOrEnum(type);
    if (container === "list") {
      if (c.packed) {
        out(`      case ${tag(field, 2)}: {`);
        out("        const e = r.len(end);");
        out(`        while (r.pos < e) ${name}.push(${c.read});`);
        out("        if (r.pos !== e) ", this.rt.ProtoReader, ".unexpected();");
        out("        break;");
        out("      }");
      }
      if (!c.packed || c.wireType !== 2) {
        out(`      case ${tag(field, c.wireType)}:`);
        out(`        ${name}.push(${c.read});`);
        out("        break;");
      }
      return;
    }
    out(`      case ${tag(field, c.wireType)}:`);
    if (field.oneof) out(`        ${prop("m", field.oneof.localName)} = { case: ${JSON.stringify(field.localName)}, value: ${c.read} };`);
    else out(`        ${name} = ${c.read};`);
    out("        break;");
  }
}

/** zod's string length (`min_length`, `max_length`): code points, a lone surrogate counting one. */
const CODE_POINT_LENGTH = `/** Length of a string in code points (a lone surrogate counts one), as zod measures min and max lengths. */
function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n--;
      i++;
    }
  }
  return n;
}
`;

/** The local holding a oneof's `case`, read once. */
function caseVar(oneof: DescOneof): string {
  return `kc_${oneof.localName}`;
}

/** The local holding a oneof's `value`, read once. */
function valueVar(oneof: DescOneof): string {
  return `kv_${oneof.localName}`;
}

/** The test of "member `i` of the message is an enumerable own key of the input" (bits set by the key loop). */
function seenBit(i: number): string {
  return `s${Math.floor(i / 31)} & ${2 ** (i % 31)}`;
}

function scalarOrEnum(type: ValueType): ScalarCodec {
  if (type.kind === "enum") return { wireType: 0, write: "int32", read: "r.int32()", packed: true };
  if (type.kind !== "scalar") throw new Error("unreachable");
  return scalarCodec(type.scalar);
}

/**
 * `v` is its type's zero value, tested so that a value of another type never passes (the complement of
 * {@link implicitSet} within the type); undefined for bools and enums, whose checks accept their zero anyway.
 */
function implicitZero(type: ValueType): string | undefined {
  if (type.kind !== "scalar") return undefined;
  switch (type.scalar) {
    case ScalarType.STRING:
      return `v === ""`;
    case ScalarType.BYTES:
      return "realLength(v) === 0";
    case ScalarType.BOOL:
      return undefined;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return "Object.is(v, 0)";
    default:
      return is64Bit(type.scalar) ? "v === 0n" : "v === 0";
  }
}

/** The presence test of an implicit-presence scalar or enum `v` (toBinary's zero-value test). */
function implicitSet(type: ValueType): string {
  if (type.kind === "enum") return `v !== ${type.desc.values[0]!.number}`;
  if (type.kind !== "scalar") throw new Error("unreachable");
  switch (type.scalar) {
    case ScalarType.STRING:
      return `v !== ""`;
    case ScalarType.BYTES:
      return "v.length > 0";
    case ScalarType.BOOL:
      return "v";
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return "!Object.is(v, 0)";
    default:
      return is64Bit(type.scalar) ? "v !== 0n" : "v !== 0";
  }
}

function scalarZero(s: ScalarType, longAsString: boolean): string {
  switch (s) {
    case ScalarType.STRING:
      return `""`;
    case ScalarType.BYTES:
      return "new Uint8Array(0)";
    case ScalarType.BOOL:
      return "false";
    default:
      if (is64Bit(s)) return longAsString ? `"0"` : "0n";
      return "0";
  }
}

function propKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}
