#!/usr/bin/env node
/**
 * The `cellar` command.
 *
 *   cellar init [--force] [--js]          scaffold buf.yaml, buf.gen.yaml and schemas/ in this app
 *   cellar generate [--check] [--force]   run codegen (skipped when no input changed since the last
 *                                         run; --force runs anyway); --check lists stale files and exits 1
 *          [--template buf.gen.yaml] [--migrations src/migrations]
 *   cellar check                          schema evolution gate against the schema lock (exit 0/1/2)
 *   cellar lock                           record the current entity versions in the schema lock
 *          [--lock schemas/cellar.lock] [--template buf.gen.yaml] [--migrations src/migrations]
 */
// Commands are imported when they run (`await import`): `generate` with nothing changed decides to
// skip from a content hash (generate-stamp.ts) without loading ts-morph, buf or the plugin.
import { join, resolve } from "node:path";
import { upToDate } from "./generate-stamp.js";
import { packageVersion } from "./paths.js";

const usage = `usage: cellar <command> [options]

commands:
  init [--force] [--js]   scaffold buf.yaml, buf.gen.yaml and schemas/ in this app (a project
                          with no code yet becomes ESM); --js generates JavaScript with .d.ts
  generate [--check] [--force]
                          generate code from schemas/ into the out dirs of buf.gen.yaml and
                          write migration stubs; skipped when no input changed since the last run
                          (--force runs anyway); --check always regenerates, changes nothing and
                          exits 1 if stale
    --template <file>     buf.gen.yaml to use (default: buf.gen.yaml)
    --migrations <dir>    user-owned migrations folder (default: src/migrations)
  check                   compare the schemas with the schema lock (buf breaking WIRE_JSON plus
                          Cellar's rules); exit 0 compatible, 1 findings, 2 could not run
  lock                    record the current version of every entity in the schema lock (when a
                          release is cut); runs the check first and changes nothing if it fails
    --lock <dir>          schema lock folder (default: \`lock=\` of buf.gen.yaml, else schemas/cellar.lock)
    --template <file>     buf.gen.yaml to read \`lock=\` from
    --migrations <dir>    user-owned migrations folder (default: src/migrations)
  --version               print the version
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? "";
    if (arg === "--template" || arg === "--migrations" || arg === "--lock") {
      const value = rest[++i];
      if (value === undefined) {
        process.stderr.write(`cellar: ${arg} needs a value\n${usage}`);
        return 2;
      }
      values.set(arg, value);
    } else if (arg.startsWith("--")) {
      flags.add(arg);
    } else {
      process.stderr.write(`cellar: unexpected argument \`${arg}\`\n${usage}`);
      return 2;
    }
  }
  const allow = (...known: string[]) => {
    for (const f of flags) {
      if (!known.includes(f)) {
        process.stderr.write(`cellar: unknown option \`${f}\` for \`${command}\`\n${usage}`);
        return false;
      }
    }
    return true;
  };
  switch (command) {
    case "init": {
      if (!allow("--force", "--js") || values.size > 0) return 2;
      const { init } = await import("./init.js");
      const r = init({ root: process.cwd(), force: flags.has("--force"), target: flags.has("--js") ? "js" : "ts" });
      for (const m of r.messages) (r.exitCode === 0 ? process.stdout : process.stderr).write(m + "\n");
      return r.exitCode;
    }
    case "generate": {
      if (!allow("--check", "--force")) return 2;
      if (values.has("--lock")) {
        process.stderr.write(`cellar: \`generate\` reads the lock named by \`lock=\` in buf.gen.yaml; \`--lock\` is for \`check\` and \`lock\`\n${usage}`);
        return 2;
      }
      const template = values.get("--template");
      const migrationsDir = values.get("--migrations");
      if (!flags.has("--check") && !flags.has("--force")) {
        const root = resolve(process.cwd());
        const stamp = { root, template: template ?? "buf.gen.yaml", migrationsDir: join(root, migrationsDir ?? join("src", "migrations")) };
        if (upToDate(stamp)) {
          process.stdout.write("cellar: generated code is up to date (no input changed since the last run; --force regenerates)\n");
          return 0;
        }
      }
      const { generate } = await import("./generate.js");
      const r = generate({
        root: process.cwd(),
        check: flags.has("--check"),
        ...(template !== undefined ? { template } : {}),
        ...(migrationsDir !== undefined ? { migrationsDir } : {}),
      });
      for (const m of r.messages) (r.exitCode === 0 ? process.stdout : process.stderr).write(m + "\n");
      return r.exitCode;
    }
    case "check":
    case "lock": {
      if (!allow()) return 2;
      const template = values.get("--template");
      const migrationsDir = values.get("--migrations");
      const lockDir = values.get("--lock");
      const opts = {
        root: process.cwd(),
        ...(template !== undefined ? { template } : {}),
        ...(migrationsDir !== undefined ? { migrationsDir } : {}),
        ...(lockDir !== undefined ? { lock: lockDir } : {}),
      };
      const r = command === "check" ? (await import("./check.js")).check(opts) : (await import("./lock.js")).lock(opts);
      for (const m of r.messages) (r.exitCode === 0 ? process.stdout : process.stderr).write(m + "\n");
      return r.exitCode;
    }
    case "--version":
    case "-v":
      process.stdout.write(`cellar ${packageVersion()}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`cellar: unknown command \`${command}\`\n${usage}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
