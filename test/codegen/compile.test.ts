// The generated code compiles: run the real `buf generate` (protoc-gen-es + protoc-gen-cellar) on
// every fixture set and on the example schemas, then `tsc --strict` the output together with code that
// uses the repositories (including @ts-expect-error lines, so wrong types must fail). Also checks
// that two runs produce byte-identical files.
//
// Every case is a folder of one scratch directory, type-checked in one tsc program (and the fixtures
// once more with exactOptionalPropertyTypes): each program type-checks the whole runtime, so one tsc per
// case took 19-26 s on a busy 2-core machine and hit the timeout (issue 11). Each case then asserts
// that no diagnostic names a file of its folder, and the negative case that its error is found there.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { features, fixtureProtos, listFiles } from "./fixtures.js";
import { bufGenerate, genTemplate, removeDir, repoRoot, runtimeImportFrom, scratchDir, writeCheckTsconfig, writeWorkspace } from "./helpers.js";

const usage: Record<string, string> = {
  collection: `import { openStore } from "./gen/index.js";
import { Order_State } from "./gen/store/v1/orders_pb.js";
import type { OrderRepository } from "./gen/store/v1/orders_cellar.js";

export async function use(dir: string): Promise<void> {
  const store = await openStore({ dir });
  const orders: OrderRepository = store.orders;
  const order = await orders.get(7n);
  const open = await orders.query({ state: Order_State.OPEN, labels: "gift", paid: true });
  await store.inventoryItems.put({ sku: "A-1", stock: 3 });
  // @ts-expect-error the key of orders is a uint64 (bigint)
  await orders.get("7");
  // @ts-expect-error placed_at is not an index
  await orders.query({ placedAt: undefined });
  // @ts-expect-error there is no such entity
  store.customers;
  void order;
  void open;
  await store.close();
}
`,
  singleton: `import { openStore } from "./gen/index.js";
import { EditorPrefsEntity } from "./gen/prefs/v1/prefs_cellar.js";
import { Mode } from "./gen/prefs/v1/prefs_pb.js";

export async function use(dir: string): Promise<void> {
  const store = await openStore({ dir });
  const prefs = await store.editorPrefs.get();
  const mode: Mode = prefs.mode;
  await store.editorPrefs.update({ zoom: 2 });
  const defaults = EditorPrefsEntity.defaults;
  // @ts-expect-error singletons have no keyed access
  await store.editorPrefs.get("x");
  void mode;
  void defaults;
  await store.close();
}
`,
  types: `import { openStore } from "./gen/index.js";
import { SinkInputSchema } from "./gen/kitchen/v1/kitchen_zod.js";

export async function use(dir: string): Promise<void> {
  const store = await openStore({ dir });
  await store.sink.put({ id: "a", fBool: true, fBytes: new Uint8Array(1), rInt32: [1], mBool: { true: new Uint8Array(0) } });
  const parsed = SinkInputSchema.safeParse({ id: "a" });
  void parsed.success;
  await store.close();
}
`,
};

const spreadLine: Record<string, string> = {
  collection: 'const o = await store.orders.get(1n); if (o) await store.orders.put({ ...o, paid: true });',
  singleton: 'await store.editorPrefs.update((p) => ({ ...p, sync: { ...p.sync, server: "https://x" } }));',
  types: 'const s = await store.sink.get("a"); if (s) await store.sink.put({ ...s, fString: "x" });',
};

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function generateInto(protos: Record<string, string>, dir: string): { dir: string; files: Map<string, string> } {
  mkdirSync(dir, { recursive: true });
  writeWorkspace(dir, protos);
  writeFileSync(join(dir, "buf.gen.yaml"), genTemplate("gen", runtimeImportFrom(join(dir, "gen"))));
  const r = bufGenerate(dir, "buf.gen.yaml");
  if (r.status !== 0) throw new Error(`buf generate failed:\n${r.output}`);
  const gen = join(dir, "gen");
  return { dir, files: new Map(listFiles(gen).map((p) => [p, readFileSync(join(gen, p), "utf8")])) };
}

const tsc = promisify(execFile);

/**
 * Type-checks every .ts file below `root` in one program and returns the diagnostics by top-level folder
 * of `root` ("" for a file elsewhere, such as the runtime itself), each as its lines of tsc output.
 */
async function typeCheckByFolder(root: string, name: string, extra: Record<string, unknown>, exclude: readonly string[]): Promise<Map<string, string[]>> {
  const tsconfig = writeCheckTsconfig(root, name, extra, exclude);
  const args = [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", tsconfig, "--pretty", "false"];
  const output = await tsc(process.execPath, args, { cwd: root, maxBuffer: 16 << 20 }).then(
    (r) => r.stdout + r.stderr,
    (e: { stdout?: string; stderr?: string; message: string }) => (e.stdout ?? "") + (e.stderr ?? "") || e.message,
  );
  const byFolder = new Map<string, string[]>();
  let folder = "";
  for (const line of output.split("\n")) {
    if (line.trim() === "") continue;
    const file = /^(\S[^(]*)\(\d+,\d+\): /.exec(line)?.[1];
    if (file !== undefined) {
      const rel = relative(root, resolve(root, file));
      folder = rel.startsWith("..") || !rel.includes(sep) ? "" : (rel.split(sep)[0] ?? "");
    } // else: a continuation line of the diagnostic above (or a message without a file: folder "")
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), line]);
  }
  return byFolder;
}

const cases = scratchDir("compile-all");
const againRoot = scratchDir("compile-again");
dirs.push(cases, againRoot);
let strict = new Map<string, string[]>();
let exact = new Map<string, string[]>();
const generated = new Map<string, Map<string, string>>();

beforeAll(async () => {
  for (const feature of features) {
    const dir = join(cases, feature);
    generated.set(feature, generateInto(fixtureProtos(feature), dir).files);
    writeFileSync(join(dir, "use.ts"), usage[feature] ?? "");
    // Spreading a read message into an update (the runtime's EntityInput), with and without
    // exactOptionalPropertyTypes.
    writeFileSync(
      join(dir, "use-spread.ts"),
      `import { openStore } from "./gen/index.js";
export async function spread(dir: string): Promise<void> {
  const store = await openStore({ dir });
  ${spreadLine[feature] ?? ""}
  await store.close();
}
`,
    );
  }
  mkdirSync(join(cases, "negative"));
  writeFileSync(join(cases, "negative", "bad.ts"), "export const n: number = 'not a number';\n");
  mkdirSync(join(cases, "examples"));
  writeFileSync(
    join(cases, "examples", "use.ts"),
    `import { openStore, entities } from "${join(repoRoot, "src", "generated", "index.js")}";
import { Theme } from "${join(repoRoot, "src", "generated", "examples", "settings", "v1", "settings_pb.js")}";
import { TaskStatus } from "${join(repoRoot, "src", "generated", "examples", "tasks", "v1", "tasks_pb.js")}";
export async function use(dir: string): Promise<void> {
  const store = await openStore({ dir });
  await store.settings.update({ theme: Theme.DARK });
  await store.tasks.put({ id: "t1", title: "Write", status: TaskStatus.TODO, tags: ["a"] });
  const todo = await store.tasks.query({ status: TaskStatus.TODO, tags: "a", projectId: "" });
  await store.focusSessions.query({ taskId: "t1" });
  await store.conversations.put({ id: "c", messages: [{ role: 2, body: { case: "content", value: "hi" } }], totalTokens: 12n });
  await store.gridLayouts.put({ id: "default", name: "Default", positions: { w1: { x: 0, y: 0, width: 2, height: 1 } } });
  await store.appState.update({ openPanels: ["tasks"] });
  await store.profiles.put({ id: "u1", email: "a@b.c" });
  // @ts-expect-error status is not a string
  await store.tasks.query({ status: "todo" });
  void todo;
  void entities;
  await store.close();
}
`,
  );
  // Two programs at once (the second has only the fixtures: the other cases were never checked with it).
  [strict, exact] = await Promise.all([
    typeCheckByFolder(cases, "strict", {}, []),
    typeCheckByFolder(cases, "exact", { exactOptionalPropertyTypes: true }, ["negative/**", "examples/**"]),
  ]);
}, 300_000);

it("no diagnostic outside the cases' folders (the runtime itself type-checks in both programs)", () => {
  expect(strict.get("") ?? []).toEqual([]);
  expect(exact.get("") ?? []).toEqual([]);
});

describe.each(features)("generated code of fixture `%s`", (feature) => {
  it("compiles under tsc --strict (with exactOptionalPropertyTypes too), and is byte-identical across runs", () => {
    expect(generated.get(feature)?.size).toBeGreaterThan(0);
    expect(strict.get(feature) ?? []).toEqual([]);
    expect(exact.get(feature) ?? []).toEqual([]);
    // At the same depth as the first run: the runtime import is a relative path.
    const again = generateInto(fixtureProtos(feature), join(againRoot, feature));
    expect([...again.files.entries()]).toEqual([...(generated.get(feature) ?? new Map()).entries()]);
  });
});

it("the type check fails on a type error (so the checks above can fail), and names the case's folder", () => {
  expect((strict.get("negative") ?? []).join("\n")).toMatch(/bad\.ts\(1,14\): error TS2322/);
});

it("the committed src/generated compiles with the example schemas' usage", () => {
  expect(strict.get("examples") ?? []).toEqual([]);
});
