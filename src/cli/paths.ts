/**
 * Where things are: the `cellar` package itself, the buf binary and protoc-gen-es it depends on.
 * Works from source (tsx, this repository) and from the build (dist/, installed in an app).
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);

/** Root directory of the installed `cellar` package (holds package.json and schemas/cellar). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string };
      if (pkg.name === "cellar") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the `cellar` package root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** The package's version. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

/** The `buf` CLI shipped by `@bufbuild/buf` (a Node launcher for the platform binary). */
export function bufLauncher(): string {
  return join(dirname(require.resolve("@bufbuild/buf/package.json")), "bin", "buf");
}

/** Directory holding the `protoc-gen-es` launcher of `@bufbuild/protoc-gen-es`. */
export function protocGenEsBinDir(): string {
  return join(dirname(require.resolve("@bufbuild/protoc-gen-es/package.json")), "bin");
}
