/** The only code that builds paths inside a store directory. Names are documented in docs/FORMAT.md. */
import path from "node:path";

const pad = (n: number) => String(n).padStart(6, "0");

export const LOCK_FILE = "LOCK";
export const MANIFEST_FILE = "MANIFEST";
/** A second, identical copy of `MANIFEST`: open falls back to it when `MANIFEST` is damaged (docs/FORMAT.md, "Manifest"). */
export const MANIFEST_COPY_FILE = "MANIFEST.copy";
export const KEYRING_FILE = "KEYRING";
/** The result of the store's last full verification (`verifyStore`, `cellar verify`): JSON, docs/FORMAT.md. */
export const VERIFIED_FILE = "VERIFIED";
export const QUARANTINE_DIR = "quarantine";
export const BACKUPS_DIR = "backups";

export const journalName = (n: number) => `journal-${pad(n)}.log`;
export const segmentName = (n: number) => `segment-${pad(n)}.seg`;
export const tempName = (name: string) => `${name}.tmp`;

export type ParsedName =
  | { kind: "journal"; number: number }
  | { kind: "segment"; number: number }
  | { kind: "temp" }
  | { kind: "manifest" }
  | { kind: "manifestCopy" }
  | { kind: "keyring" }
  | { kind: "lock" }
  | { kind: "quarantine" }
  | { kind: "backups" }
  | { kind: "other" };

export function parseName(name: string): ParsedName {
  if (name === MANIFEST_FILE) return { kind: "manifest" };
  if (name === MANIFEST_COPY_FILE) return { kind: "manifestCopy" };
  if (name === KEYRING_FILE) return { kind: "keyring" };
  if (name === LOCK_FILE) return { kind: "lock" };
  if (name === QUARANTINE_DIR) return { kind: "quarantine" };
  if (name === BACKUPS_DIR) return { kind: "backups" };
  if (name.endsWith(".tmp")) return { kind: "temp" };
  // A number above 2^32 - 1 cannot be a file number (u32 in every header): such a name is not ours.
  let m = /^journal-(\d{6,})\.log$/.exec(name);
  if (m && Number(m[1]) <= 0xffffffff) return { kind: "journal", number: Number(m[1]) };
  m = /^segment-(\d{6,})\.seg$/.exec(name);
  if (m && Number(m[1]) <= 0xffffffff) return { kind: "segment", number: Number(m[1]) };
  return { kind: "other" };
}

export class StorePaths {
  constructor(readonly dir: string) {}
  file(name: string): string {
    return path.join(this.dir, name);
  }
  get lock(): string {
    return this.file(LOCK_FILE);
  }
  get manifest(): string {
    return this.file(MANIFEST_FILE);
  }
  get manifestTemp(): string {
    return this.file(tempName(MANIFEST_FILE));
  }
  get manifestCopy(): string {
    return this.file(MANIFEST_COPY_FILE);
  }
  get manifestCopyTemp(): string {
    return this.file(tempName(MANIFEST_COPY_FILE));
  }
  get keyring(): string {
    return this.file(KEYRING_FILE);
  }
  get keyringTemp(): string {
    return this.file(tempName(KEYRING_FILE));
  }
  journal(n: number): string {
    return this.file(journalName(n));
  }
  segment(n: number): string {
    return this.file(segmentName(n));
  }
  segmentTemp(n: number): string {
    return this.file(tempName(segmentName(n)));
  }
  get quarantineDir(): string {
    return this.file(QUARANTINE_DIR);
  }
  quarantine(name: string): string {
    return path.join(this.quarantineDir, name);
  }
}
