/**
 * Options of `protoc-gen-cellar`, given in `buf.gen.yaml` as `opt: [runtime_import=…]`.
 *
 * The standard options of every protobuf-es plugin (`target`, `import_extension`, …) are parsed by
 * `@bufbuild/protoplugin` itself; this module only handles Cellar's own and rejects anything else.
 */

export interface CellarPluginOptions {
  /**
   * Where generated code imports the Cellar runtime (`defineCollection`, `openStore`, …) from.
   *
   * - A package name (the default, `cellar`): `import { defineCollection } from "cellar"`.
   * - A path starting with `./` or `../`, relative to the output directory (`out` in
   *   `buf.gen.yaml`); it is made relative to each generated file. Cellar's own repository uses
   *   `runtime_import=../runtime/index.js` so `src/generated/**` imports `src/runtime/index.ts`.
   *
   * @example `opt: [target=ts, import_extension=js, runtime_import=../runtime/index.js]`
   */
  readonly runtimeImport: string;
}

export const defaultRuntimeImport = "cellar";

export function parseCellarOptions(raw: readonly { key: string; value: string }[]): CellarPluginOptions {
  let runtimeImport = defaultRuntimeImport;
  for (const { key, value } of raw) {
    switch (key) {
      case "runtime_import":
        if (value.trim() === "" || /\s/.test(value)) {
          throw new Error(`option \`runtime_import\` expects a package name or a relative path, found \`${value}\``);
        }
        runtimeImport = value;
        break;
      default:
        throw new Error(`unknown option \`${key}\`; protoc-gen-cellar accepts \`runtime_import\` and the standard protobuf-es options`);
    }
  }
  return { runtimeImport };
}
