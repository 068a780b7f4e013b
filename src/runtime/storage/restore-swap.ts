/**
 * The switch of a restore (docs/FORMAT.md, "Backup file", "Restore"): a verified store staged beside the
 * target directory replaces it by two renames, with a marker file naming both so that a crash between them
 * is finished by the next open or restore (`settleRestore`): at any crash the target path holds the old
 * store or the restored one, or (between the renames) nothing, with the marker saying where the restored
 * one is. Used by restore.ts, and by open.ts before it opens a directory.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { type Failpoint, type FileIO, replaceFileAtomicallyOffLoop, syncDirOffLoop } from "../platform/io.js";
import { LOCK_FILE } from "../format/filenames.js";

interface Marker {
  /** Basename (in the target's parent) of the verified store to move in. */
  staged: string;
  /** Basename the old store is moved to, then removed. */
  aside: string;
}

function names(dir: string): { parent: string; base: string; marker: string } {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  return { parent, base, marker: path.join(parent, `.${base}.cellar-restore`) };
}

/** A new staging directory name beside `dir` (same file system, so the switch is a rename). */
export function stagingDir(dir: string): string {
  const { parent, base } = names(dir);
  return path.join(parent, `.${base}.restore-${randomBytes(6).toString("hex")}`);
}

/** Remove the staging directories of earlier restores of `dir` that were killed before their switch (no marker names them). */
export function removeStaleStaging(dir: string): void {
  const { parent, base } = names(dir);
  if (!fs.existsSync(parent)) return;
  for (const n of fs.readdirSync(parent)) if (n.startsWith(`.${base}.restore-`)) removeTree(path.join(parent, n));
}

/** Remove a directory tree (a staging directory, or an old store after the switch). */
export function removeTree(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

function readMarker(io: FileIO, file: string, base: string): Marker | null {
  if (!io.exists(file)) return null;
  try {
    const m = JSON.parse(Buffer.from(io.readFile(file)).toString("utf8")) as Partial<Marker>;
    const ours = (n: unknown): n is string => typeof n === "string" && n.startsWith(`.${base}.`) && !n.includes("/") && !n.includes("\\");
    if (ours(m.staged) && ours(m.aside)) return { staged: m.staged, aside: m.aside };
  } catch {
    // a torn marker: it was being written, so no rename happened yet
  }
  return null;
}

/**
 * Replace `dir` by the verified store in `staged` (a sibling): marker, rename `dir` aside, rename `staged` in,
 * fsync the parent, remove the old store and the marker. The fsyncs run on the libuv pool (`FileIO.fsyncAsync`)
 * and the old store is removed asynchronously, so the event loop is not held while the disk works (issue 15);
 * the steps, and what a crash between them leaves, are those of the table in docs/FORMAT.md ("Restore").
 */
export async function swapIn(io: FileIO, dir: string, staged: string, fp: (name: Failpoint) => void): Promise<void> {
  const { parent, base, marker } = names(dir);
  if (io.exists(dir) && io.readdir(dir).every((n) => n === LOCK_FILE)) {
    // No store at `dir` (its only file is the lock this restore holds, or none): nothing to keep, so no marker
    // and no old store aside. A crash between the removal and the rename leaves no `dir` (the state before the
    // restore, as far as any store goes: an open creates an empty one) and a staging directory the next
    // restore removes; after the rename, the restored store.
    io.unlink(path.join(dir, LOCK_FILE)); // the lock's descriptor stays open (and locked) until the restore releases it
    fs.rmdirSync(dir);
    fp("restore.afterAside");
    io.rename(staged, dir);
    await syncDirOffLoop(io, parent);
    fp("restore.afterSwap");
    return;
  }
  const m: Marker = { staged: path.basename(staged), aside: `.${base}.replaced-${randomBytes(6).toString("hex")}` };
  // One fsync of the parent (after the marker's rename) makes the staging directory's entry and the marker
  // durable together: a marker that survives a crash without that entry finds `dir` in place and no staging
  // directory, and is dropped (settleRestore), the old store kept.
  await replaceFileAtomicallyOffLoop(io, parent, `${marker}.tmp`, marker, Buffer.from(JSON.stringify(m)));
  fp("restore.afterMarker");
  if (io.exists(dir)) io.rename(dir, path.join(parent, m.aside));
  fp("restore.afterAside");
  io.rename(staged, dir);
  await syncDirOffLoop(io, parent);
  fp("restore.afterSwap");
  // `finish` without the parent's fsync: the switch is durable already; a marker that a crash brings back
  // finds `dir` in place and no staging directory, and this runs again.
  await fs.promises.rm(path.join(parent, m.aside), { recursive: true, force: true });
  io.unlink(marker);
}

/** Remove the old store and the marker, then fsync the parent (settling a restore a crash interrupted). */
function finish(io: FileIO, parent: string, marker: string, m: Marker): void {
  removeTree(path.join(parent, m.aside));
  io.unlink(marker);
  io.syncDir(parent);
}

/**
 * Settle a restore a crash interrupted (no-op without a marker): with `dir` missing, the restored store
 * moves in (the old one is aside); with `dir` present and the staged store too, the switch never began and
 * the staged copy is dropped (the old store may have been written since); with the staged store gone, the
 * switch was done and the old store is removed.
 */
export function settleRestore(io: FileIO, dir: string): void {
  const { parent, base, marker } = names(dir);
  const m = readMarker(io, marker, base);
  if (!m) {
    if (io.exists(marker)) io.unlink(marker);
    return;
  }
  const staged = path.join(parent, m.staged);
  const aside = path.join(parent, m.aside);
  if (!io.exists(dir)) {
    if (io.exists(staged)) io.rename(staged, dir);
    else if (io.exists(aside)) io.rename(aside, dir); // cannot happen in the sequence above; put the old store back
    io.syncDir(parent);
  } else if (io.exists(staged)) {
    removeTree(staged);
    // An old store aside as well would mean someone created a store at `dir` meanwhile: keep both, remove nothing.
    if (io.exists(aside)) return io.unlink(marker);
  }
  finish(io, parent, marker, m);
}
