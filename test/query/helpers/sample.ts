/**
 * A message with a field of every kind an index may hold (string, int32, uint32, enum, bool, double,
 * Timestamp, int64, Duration, a repeated string), built at run time from a FileDescriptorProto with
 * protobuf-es (no codegen step): the query tests declare their own indexes over it, single and compound,
 * with hand-written `defineCollection` definitions, string-keyed (`id`) or integer-keyed (`seq`).
 */
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import {
  DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
  file_google_protobuf_timestamp,
} from "@bufbuild/protobuf/wkt";
import { z } from "zod";
import { defineCollection, type CollectionDefinition } from "../../../src/runtime/index.js";
import type { IndexSpec } from "../../../src/runtime/typed/entity.js";

const T = FieldDescriptorProto_Type;
/** name, number, type, label repeated, type name */
const FIELDS: [string, number, FieldDescriptorProto_Type, boolean?, string?][] = [
  ["id", 1, T.STRING],
  ["name", 2, T.STRING],
  ["n", 3, T.INT32],
  ["kind", 4, T.ENUM, false, ".cellar.test.Kind"],
  ["flag", 5, T.BOOL],
  ["score", 6, T.DOUBLE],
  ["at", 7, T.MESSAGE, false, ".google.protobuf.Timestamp"],
  ["big", 8, T.INT64],
  ["tags", 9, T.STRING, true],
  ["dur", 10, T.MESSAGE, false, ".google.protobuf.Duration"],
  ["u", 11, T.UINT32],
  ["seq", 12, T.INT32],
];

const file = create(FileDescriptorProtoSchema, {
  name: "cellar/test/sample.proto",
  package: "cellar.test",
  syntax: "proto3",
  dependency: ["google/protobuf/timestamp.proto", "google/protobuf/duration.proto"],
  enumType: [{ name: "Kind", value: [0, 1, 2, 3].map((n) => ({ name: `KIND_${n}`, number: n })) }],
  messageType: [
    create(DescriptorProtoSchema, {
      name: "Sample",
      field: FIELDS.map(([name, number, type, repeated, typeName]) => ({
        name,
        jsonName: name,
        number,
        type,
        label: repeated ? FieldDescriptorProto_Label.REPEATED : FieldDescriptorProto_Label.OPTIONAL,
        ...(typeName && { typeName }),
      })),
    }),
  ],
});
const registry = createFileRegistry(file, (name) =>
  name === "google/protobuf/timestamp.proto" ? file_google_protobuf_timestamp : name === "google/protobuf/duration.proto" ? file_google_protobuf_duration : undefined,
);
export const SampleSchema = registry.getMessage("cellar.test.Sample") as DescMessage;

/** The indexable fields, by kind (local names = proto names here). */
export const SAMPLE_FIELDS = ["name", "n", "kind", "flag", "score", "at", "big", "tags", "dur", "u"] as const;
export type SampleField = (typeof SAMPLE_FIELDS)[number];
const NUMBER = new Map(FIELDS.map(([name, number]) => [name, number]));

/** An index over `fields` (a compound one when several), as codegen declares it. */
export function spec(fields: readonly string[]): IndexSpec {
  return { id: fields.map((f) => NUMBER.get(f)).join(","), fields: [...fields], name: fields.join(",") };
}

/** A collection of samples with these indexes, keyed by `id` (string) or `seq` (int32). */
export function sampleEntity(indexes: readonly (readonly string[])[], keyed: "id" | "seq" = "id", name = "samples"): CollectionDefinition<DescMessage, string | number, string> {
  const specs = indexes.map(spec);
  return defineCollection<DescMessage, string | number, string>({
    name,
    version: 1,
    schema: SampleSchema,
    validator: z.any(),
    sensitive: [],
    key: keyed,
    keyKind: keyed === "id" ? "string" : "int32",
    indexes: [...new Set(specs.flatMap((s) => s.fields))],
    indexSpecs: specs,
  });
}
