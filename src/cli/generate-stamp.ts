/**
 * The no-change path of `cellar generate`: a content hash of everything that decides what it writes,
 * kept with the hashes of what it wrote, so a second run with nothing changed skips buf and the
 * plugins (a real run takes seconds; this takes milliseconds).
 *
 * The stamp lives in `node_modules/.cache/cellar/` of the app (never committed, gone with a fresh
 * install). A run is skipped only when all of these hold:
 *
 * - the inputs hash the same: buf.yaml, the template, buf.lock, every `.proto` file of every module,
 *   every file of the schema lock, the `--template`/`--migrations` options, the `cellar` version, the
 *   plugin's own code (`codegen/` from source, `dist/codegen/` when installed) and the versions of buf,
 *   protoc-gen-es, protoplugin, protobuf and typescript;
 * - every `out` directory holds exactly the files the last run wrote, byte for byte (a hand edit, a
 *   deleted or an extra file means a real run, which repairs it);
 * - every migration stub and the registry the last run planned still exist.
 *
 * `cellar generate --check` (the CI freshness check) never reads the stamp: it always regenerates
 * and compares. `cellar generate --force` ignores it. This module imports only `node:` built-ins
 * and the CLI's light helpers, so the skip decision loads neither ts-morph nor buf nor the plugin.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { moduleDirs, outDirs, templateLock } from "./buf.js";
import { packageRoot, packageVersion } from "./paths.js";

const stampFormat = 1;

/** Packages whose version changes what `buf generate` writes. */
const toolPackages = ["@bufbuild/buf", "@bufbuild/protoc-gen-es", "@bufbuild/protoplugin", "@bufbuild/protobuf", "typescript"];

export interface StampOptions {
  /** App root (absolute). */
  readonly root: string;
  /** buf.gen.yaml, relative to root. */
  readonly template: string;
  /** Migrations folder (absolute). */
  readonly migrationsDir: string;
}

interface Stamp {
  readonly format: number;
  readonly inputs: string;
  /** Every file of every `out` directory (relative to root) → sha256. */
  readonly outputs: Record<string, string>;
  /** Stubs and registry (relative to root) that must exist. */
  readonly required: readonly string[];
}

function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function slash(p: string): string {
  return p.split(sep).join("/");
}

/** Files under `dir` (sorted), skipping dot folders and nested node_modules; `accept` filters by name. */
function walk(dir: string, accept: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!e.name.startsWith(".") && e.name !== "node_modules") visit(p);
      } else if (accept(e.name)) {
        out.push(p);
      }
    }
  };
  visit(dir);
  return out;
}

/** Version of an installed package as Node would find it from `from` (walking up node_modules). */
function installedVersion(from: string, name: string): string {
  let dir = from;
  for (;;) {
    const file = join(dir, "node_modules", name, "package.json");
    if (existsSync(file)) {
      try {
        return String((JSON.parse(readFileSync(file, "utf8")) as { version?: unknown }).version);
      } catch {
        return "unreadable";
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return "none";
    dir = parent;
  }
}

/** The content hash of everything that decides the output of `cellar generate` (see the header). */
export function inputsDigest(options: StampOptions): string {
  const { root, template } = options;
  const h = createHash("sha256");
  const add = (label: string, data: string | Uint8Array) => {
    h.update(label);
    h.update("\0");
    h.update(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    h.update("\0");
  };
  add("stamp", String(stampFormat));
  add("template", template);
  add("migrations", slash(relative(root, options.migrationsDir)));
  for (const file of ["buf.yaml", "buf.lock", template]) {
    const p = join(root, file);
    add(`config:${file}`, existsSync(p) ? readFileSync(p) : "<none>");
  }
  for (const dir of moduleDirs(root)) {
    for (const p of walk(join(root, dir), (n) => n.endsWith(".proto"))) add(`proto:${slash(relative(root, p))}`, readFileSync(p));
  }
  const locks = new Set([templateLock(root, template).lock ?? "schemas/cellar.lock", "schemas/cellar.lock"]);
  for (const dir of locks) {
    for (const p of walk(join(root, dir), () => true)) add(`lock:${slash(relative(root, p))}`, readFileSync(p));
  }
  const pkg = packageRoot();
  add("cellar", packageVersion());
  for (const dir of [join(pkg, "codegen"), join(pkg, "dist", "codegen")]) {
    for (const p of walk(dir, (n) => /\.(ts|js)$/.test(n))) add(`plugin:${slash(relative(pkg, p))}`, readFileSync(p));
  }
  for (const name of toolPackages) add(`tool:${name}`, `${installedVersion(root, name)}/${installedVersion(pkg, name)}`);
  return h.digest("hex");
}

/** Where the stamp of this root/template/migrations combination lives; undefined without node_modules. */
export function stampPath(options: StampOptions): string | undefined {
  const modules = join(options.root, "node_modules");
  if (!existsSync(modules)) return undefined;
  // The root is part of the key: one node_modules may serve several checkouts (a symlink, a workspace).
  const id = sha256(`${options.root}\0${options.template}\0${slash(relative(options.root, options.migrationsDir))}`).slice(0, 16);
  return join(modules, ".cache", "cellar", `generate-${id}.json`);
}

function outputHashes(root: string, template: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dir of outDirs(join(root, template))) {
    for (const p of walk(join(root, dir), () => true)) out[slash(relative(root, p))] = sha256(readFileSync(p));
  }
  return out;
}

/**
 * Whether the last `cellar generate` ran on exactly these inputs and its output is untouched, so this
 * run has nothing to do. Any doubt (no stamp, an unreadable one, a missing template) is "no".
 */
export function upToDate(options: StampOptions): boolean {
  const file = stampPath(options);
  if (!file || !existsSync(file) || !existsSync(join(options.root, options.template))) return false;
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(file, "utf8")) as Stamp;
  } catch {
    return false;
  }
  if (stamp.format !== stampFormat || typeof stamp.outputs !== "object" || !Array.isArray(stamp.required)) return false;
  if (stamp.inputs !== inputsDigest(options)) return false;
  const now = outputHashes(options.root, options.template);
  const names = Object.keys(now);
  if (names.length !== Object.keys(stamp.outputs).length) return false;
  for (const name of names) if (stamp.outputs[name] !== now[name]) return false;
  return stamp.required.every((p) => existsSync(join(options.root, p)));
}

/** Records a successful run: `inputs` is the digest taken before it started (a change made during the run means a rerun). */
export function writeStamp(options: StampOptions, inputs: string, required: readonly string[]): void {
  const file = stampPath(options);
  if (!file) return;
  const stamp: Stamp = { format: stampFormat, inputs, outputs: outputHashes(options.root, options.template), required: [...required].sort() };
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(stamp) + "\n");
    renameSync(tmp, file);
  } catch {
    // A cache that cannot be written only costs the next run its shortcut.
  }
}

/** Forgets the stamp (a failed run must not leave one claiming the previous output is current). */
export function clearStamp(options: StampOptions): void {
  const file = stampPath(options);
  if (file) rmSync(file, { force: true });
}
