/**
 * Reads Cellar's custom options, `(cellar.v1.entity)` and `(cellar.v1.field)`, from descriptors.
 *
 * The extensions are looked up in the code generator request itself (every schema that uses them
 * imports `cellar/v1/options.proto`), so the plugin reads exactly the options file the app compiled
 * against. Only the TypeScript shapes come from protoc-gen-es's output of that file.
 */
import { getOption, hasOption, type DescExtension, type DescField, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import type { EntityOptions, FieldAnnotations } from "../src/generated/cellar/v1/options_pb.js";

export type { EntityOptions, FieldAnnotations };

export const optionsFileName = "cellar/v1/options.proto";
const entityExtensionName = "cellar.v1.entity";
const fieldExtensionName = "cellar.v1.field";

/** The two option extensions, when some schema imports `cellar/v1/options.proto`. */
export interface CellarExtensions {
  readonly entity: DescExtension | undefined;
  readonly field: DescExtension | undefined;
}

export function findCellarExtensions(files: readonly DescFile[]): CellarExtensions {
  let entity: DescExtension | undefined;
  let field: DescExtension | undefined;
  for (const file of files) {
    for (const ext of file.extensions) {
      if (ext.typeName === entityExtensionName) entity = ext;
      if (ext.typeName === fieldExtensionName) field = ext;
    }
  }
  return { entity, field };
}

/** `(cellar.v1.entity)` of a message, or undefined when the message is not an entity. */
export function readEntityOptions(ext: CellarExtensions, desc: DescMessage): EntityOptions | undefined {
  if (!ext.entity || !hasOption(desc, ext.entity)) return undefined;
  return getOption(desc, ext.entity) as EntityOptions;
}

/** `(cellar.v1.field)` of a field, or undefined when the field has none. */
export function readFieldAnnotations(ext: CellarExtensions, field: DescField): FieldAnnotations | undefined {
  if (!ext.field || !hasOption(field, ext.field)) return undefined;
  return getOption(field, ext.field) as FieldAnnotations;
}

/** Field numbers inside the option messages, for pointing errors at the exact option. */
export const entityOptionField = {
  version: 1,
  key: 2,
  singleton: 3,
  indexes: 4,
  retention: 5,
  name: 6,
  retired: 7,
  history: 8,
} as const;

export const historyOptionField = {
  keep: 1,
  maxAge: 2,
} as const;

export const retentionOptionField = {
  timestampField: 1,
  maxAge: 2,
  maxCount: 3,
} as const;

export const fieldAnnotationField = {
  sensitive: 1,
  default: 2,
  required: 3,
  minLength: 4,
  maxLength: 5,
  pattern: 6,
  min: 7,
  max: 8,
  maxItems: 9,
} as const;
