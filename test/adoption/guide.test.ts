// docs/GETTING-STARTED.md, replayed literally from a packed tarball: the "Done when" scenario of issue 11.
// The guide's code fences say what to do with them in their info string:
//   ```sh app=ts,js            run in bash (cwd carried from block to block, as in a terminal); must exit 0
//   ```sh app=ts exit=1        ... must exit 1
//   ```ts app=ts file=src/x.ts write the file (relative to the current directory)
//   ```text app=ts             every line is in what the path's last `sh` block printed
//   ```sh checkout             the checkout's `npm pack`: run here as `npm pack --pack-destination`
// Each path (`ts`: TypeScript ESM, `js`: plain JavaScript, `cjs`: CommonJS) runs its blocks in order
// in one folder next to `cellar/` (which holds the tarball), the three side by side. Failures are
// soft: one run lists every step that disagrees with the guide, not only the first.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packTarball, repoRoot, run, type RunResult } from "../helpers/pack.js";

export interface GuideBlock {
  readonly lang: string;
  /** The paths it belongs to (`app=`); empty for blocks that are not replayed. */
  readonly apps: readonly string[];
  readonly file?: string;
  readonly exit: number;
  readonly checkout: boolean;
  readonly body: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

/** Every fenced block of a Markdown text, with the attributes of its info string. */
export function guideBlocks(markdown: string): GuideBlock[] {
  const blocks: GuideBlock[] = [];
  const fence = /^```(\S*)([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  for (const m of markdown.matchAll(fence)) {
    const words = (m[2] ?? "").trim().split(/\s+/).filter(Boolean);
    const attr = (name: string) => words.find((w) => w.startsWith(`${name}=`))?.slice(name.length + 1);
    const file = attr("file");
    blocks.push({
      lang: m[1] ?? "",
      apps: attr("app")?.split(",") ?? [],
      ...(file !== undefined ? { file } : {}),
      exit: Number(attr("exit") ?? "0"),
      checkout: words.includes("checkout"),
      body: m[3] ?? "",
      line: markdown.slice(0, m.index).split("\n").length,
    });
  }
  return blocks;
}

const guidePath = join(repoRoot, "docs", "GETTING-STARTED.md");
const guide = readFileSync(guidePath, "utf8");
const blocks = guideBlocks(guide);
const work = mkdtempSync(join(tmpdir(), "cellar-guide-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The user's environment: none of the npm_* variables `npm test` sets (npm_config_local_prefix would
// send the apps' installs into this checkout); packages from npm's cache when it has them.
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== "INIT_CWD" && k !== "NODE_OPTIONS"),
);
Object.assign(env, { npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" });
// Nor this checkout's node_modules/.bin, which `npm test` and `npx vitest` put on PATH.
env["PATH"] = (process.env["PATH"] ?? "").split(delimiter).filter((p) => !p.startsWith(repoRoot)).join(delimiter);

beforeAll(() => {
  // Step 1: `npm pack` in the checkout writes cellar-<version>.tgz there; the apps use ../cellar/<it>.
  const checkout = blocks.filter((b) => b.checkout);
  expect(checkout).toHaveLength(1);
  expect(checkout[0]?.body).toMatch(/^npm pack$/m);
  mkdirSync(join(work, "cellar"));
  const tarball = packTarball(join(work, "cellar"));
  expect(guide).toContain(`../cellar/${basename(tarball)}`);
}, 300_000);

it("every replayed block is a shell command, a file or expected output, for a known path", () => {
  for (const b of blocks.filter((b) => b.apps.length > 0)) {
    expect(b.apps.every((a) => ["ts", "js", "cjs"].includes(a)), `line ${b.line}`).toBe(true);
    expect(b.file !== undefined || b.lang === "sh" || b.lang === "text", `line ${b.line}: \`${b.lang}\` without file=`).toBe(true);
  }
  expect(blocks.filter((b) => b.apps.includes("ts")).length).toBeGreaterThan(20);
});

describe.concurrent("docs/GETTING-STARTED.md, replayed from the packed tarball", () => {
  it.for([
    ["ts", "TypeScript (ESM, tsx and tsc)"],
    ["js", "plain JavaScript (ESM, target js+dts, a .cjs script)"],
    ["cjs", "CommonJS (TypeScript compiled to CommonJS, a .cjs script)"],
  ] as const)("%s: %s", { timeout: 300_000 }, async ([app], { expect }) => {
    let cwd = work;
    let last: RunResult | undefined;
    let lastLine = 0;
    const cwdFile = join(work, `.cwd-${app}`);
    for (const b of blocks.filter((b) => b.apps.includes(app))) {
      const where = `GETTING-STARTED.md:${b.line} (${app})`;
      if (b.file !== undefined) {
        const target = join(cwd, b.file);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, b.body);
      } else if (b.lang === "sh") {
        const started = Date.now();
        last = await run(cwd, "bash", ["-e", "-c", `${b.body}\npwd > '${cwdFile}'\n`], env);
        lastLine = b.line;
        timings.push(`${where}: ${Date.now() - started} ms`);
        expect.soft(last.status, `${where}: exit status of\n${b.body}\n${last.output}`).toBe(b.exit);
        if (last.status === 0) cwd = readFileSync(cwdFile, "utf8").trim();
      } else if (b.lang === "text") {
        for (const line of b.body.split("\n").map((l) => l.trim()).filter(Boolean)) {
          expect.soft(last?.output ?? "", `${where}: output of the block at line ${lastLine}`).toContain(line);
        }
      }
    }
    if (app === "cjs") {
      // The guide's `npx tsc` is whatever TypeScript npm installs today; the CommonJS app must also
      // type-check with the oldest the guide names (>= 5.8, a CommonJS `require` of an ES module under
      // nodenext): this repository's 5.9.
      const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
      const r = await run(cwd, process.execPath, [tsc, "-p", ".", "--noEmit"], env);
      expect.soft(r.status, `TypeScript ${JSON.parse(readFileSync(join(repoRoot, "node_modules", "typescript", "package.json"), "utf8")).version} on ${cwd}:\n${r.output}`).toBe(0);
    }
  });
});

const timings: string[] = [];
afterAll(() => {
  if (process.env["CELLAR_GUIDE_TIMINGS"]) console.log(timings.join("\n"));
});
