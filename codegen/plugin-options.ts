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
  /**
   * The schema lock folder (written by `cellar lock`), relative to the directory buf runs in (the app
   * root). When set, every locked version older than an entity's current one gets exact historical
   * message types (`history/<entity>/v<N>.ts`: `TaskV1`, `TaskV1Schema`) and `defineMigration` is
   * typed from them; a version below the lock's latest, or more than one above it, is an error.
   * Unset: no lock, no migration steps.
   *
   * @example `opt: [target=ts, import_extension=js, lock=schemas/cellar.lock]`
   */
  readonly lock: string | undefined;
  /**
   * The module exporting the app's migration steps as `migrations` (`src/migrations/registry.ts`, which
   * `cellar generate` keeps), imported by the generated `index.ts`: its `openStore` then passes those
   * steps unless `options.migrations` is given, so an app cannot forget them. A package name or a path
   * starting with `./` or `../`, relative to the output directory like `runtime_import`. Unset: the
   * generated `openStore` passes only what `options.migrations` holds.
   *
   * @example `opt: [target=ts, import_extension=js, lock=schemas/cellar.lock, migrations_import=../migrations/registry.js]`
   */
  readonly migrationsImport: string | undefined;
}

export const defaultRuntimeImport = "cellar";

export function parseCellarOptions(raw: readonly { key: string; value: string }[]): CellarPluginOptions {
  let runtimeImport = defaultRuntimeImport;
  let lock: string | undefined;
  let migrationsImport: string | undefined;
  for (const { key, value } of raw) {
    switch (key) {
      case "lock":
        if (value.trim() === "" || /\s/.test(value) || value.startsWith("/")) {
          throw new Error(`option \`lock\` expects a folder relative to the app root, found \`${value}\``);
        }
        lock = value.replace(/\/+$/, "");
        break;
      case "migrations_import":
        if (value.trim() === "" || /\s/.test(value) || value.startsWith("/")) {
          throw new Error(`option \`migrations_import\` expects a package name or a relative path (\`../migrations/registry.js\`), found \`${value}\``);
        }
        migrationsImport = value;
        break;
      case "runtime_import":
        if (value.trim() === "" || /\s/.test(value)) {
          throw new Error(`option \`runtime_import\` expects a package name or a relative path, found \`${value}\``);
        }
        runtimeImport = value;
        break;
      default:
        throw new Error(`unknown option \`${key}\`; protoc-gen-cellar accepts \`runtime_import\`, \`lock\`, \`migrations_import\` and the standard protobuf-es options`);
    }
  }
  return { runtimeImport, lock, migrationsImport };
}
