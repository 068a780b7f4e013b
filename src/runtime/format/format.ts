/**
 * On-disk constants. The byte grammar, what each checksum covers and why, and
 * every crash window live in docs/FORMAT.md; this file holds only the numbers.
 */

/** First six bytes of every Cellar file. */
export const MAGIC = new Uint8Array([0x43, 0x45, 0x4c, 0x4c, 0x41, 0x52]); // "CELLAR"
/** Version of the byte format described in docs/FORMAT.md: what every new file's header says. */
export const FORMAT_VERSION = 4;
/**
 * The first version whose segments hold a paged index (docs/FORMAT.md, "Segment"): a directory frame and
 * index pages read one at a time. Segments of versions 2 and 3 hold the whole index in one frame.
 */
export const PAGED_INDEX_VERSION = 4;
/** Oldest version still read: version 2 differs only in that its journals have no end record. */
export const MIN_FORMAT_VERSION = 2;

/** Byte 6 of the file header: which kind of file this is. */
export const FileKind = {
  journal: 0x4a, // 'J'
  segment: 0x53, // 'S'
  manifest: 0x4d, // 'M'
  keyring: 0x4b, // 'K'
} as const;
export type FileKind = (typeof FileKind)[keyof typeof FileKind];

export const FILE_HEADER_SIZE = 32;
/** Bytes of the file header covered by its own checksum and bound into every frame's associated data. */
export const FILE_HEADER_BOUND = 28;
export const STORE_ID_SIZE = 16;

export const FRAME_HEADER_SIZE = 24;
/** Upper bound of a frame's payload length; larger lengths read from disk are corruption. */
export const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;
/** Upper bound of a frame's seq: exact as a JavaScript number and as an 8-byte varint (the manifest's `seqFloor`). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Upper bound of a file number (u32 in the file header). */
export const MAX_FILE_NUMBER = 0xffffffff;
/** A journal end record: frame header + u64 LE offset of the record itself. */
export const END_RECORD_SIZE = 32;

export const FrameType = {
  /** A journal commit group: one or more writes that become durable together. */
  commit: 1,
  /** A segment data block: records of one entity. */
  block: 2,
  /** A segment's index: where each record of the segment is. */
  index: 3,
  /** The manifest's body. */
  manifest: 4,
  /** The keyring's body (never sealed: it holds wrapped keys). */
  keyring: 5,
  /** A journal's end record (version 3): where the frames end; overwritten by the next commit. */
  end: 6,
  /** A page of a segment's index (version 4): the slots of a run of records of one entity. */
  indexPage: 7,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FrameFlag = {
  compressed: 0x01,
  sealed: 0x02,
} as const;

/** XChaCha20-Poly1305 nonce and tag sizes. */
export const NONCE_SIZE = 24;
export const TAG_SIZE = 16;

/** Entry operations inside a commit frame. */
export const Op = { put: 1, delete: 2 } as const;

/** Segment footer: u64 index offset, u32 index frame length, u32 crc, 8-byte magic. */
export const SEGMENT_FOOTER_SIZE = 24;
export const SEGMENT_FOOTER_MAGIC = new Uint8Array([0x43, 0x45, 0x4c, 0x4c, 0x45, 0x4e, 0x44, 0x00]); // "CELLEND\0"

/** Target plaintext size of one segment data block. */
export const SEGMENT_BLOCK_TARGET = 64 * 1024;
/** Target size of a segment index page's plaintext (version 4; writer): a page closes once it reaches it. */
export const INDEX_PAGE_TARGET = 16 * 1024;

/**
 * Journal files are preallocated with zeros. A new store's first journal starts at `JOURNAL_PREALLOC_INITIAL`
 * and doubles as it fills (each extension adds the allocated size, at least the initial size and at most
 * `JOURNAL_PREALLOC_MAX_STEP`), so a small store stays small and a busy one extends rarely. A journal a
 * compaction starts is preallocated like the one it replaces, up to `JOURNAL_PREALLOC_CARRY`.
 */
export const JOURNAL_PREALLOC_INITIAL = 16 * 1024;
export const JOURNAL_PREALLOC_CARRY = 1024 * 1024;
/**
 * The zeros of an extension are written, and flushed by the commit's fdatasync, on the commit's path: after a
 * bulk load left a 3 MB journal, a doubling step made the next small commit write 3 MB of zeros (70–86 ms of the
 * event loop). 1 MiB bounds that, and a busy journal of one-at-a-time puts still extends once per ~2,000 puts.
 */
export const JOURNAL_PREALLOC_MAX_STEP = 1024 * 1024;
/** A commit group at least this large that does not fit the preallocation is written past it, with no zero fill first. */
export const JOURNAL_DIRECT_BYTES = 64 * 1024;
/** Smaller first preallocations tried, in order (those below the one wanted), when the disk cannot take it (0: header and end record only). */
export const JOURNAL_PREALLOC_FALLBACKS = [64 * 1024, 0] as const;
/** Journals are read at open through a window of this size, grown only for a frame longer than it. */
export const JOURNAL_READ_WINDOW = 4 * 1024 * 1024;

/** Commit payloads at least this large are compressed (smaller ones cost more CPU than they save). */
export const COMPRESS_MIN_BYTES = 4096;

/** Limits on what one write may contain. */
export const MAX_KEY_BYTES = 1024;
export const MAX_ENTITY_NAME_BYTES = 255;
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;
export const MAX_TERMS_PER_RECORD = 1024;
/** Upper bound of a record count or list length read from disk. */
export const MAX_COUNT = 1 << 28;

/** Key id written in frames of stores without encryption. */
export const KEY_ID_NONE = 0;

/**
 * Engine entity names Cellar uses for itself start with this (app storage names are `[a-z][a-z0-9_]*`); record
 * history of entity `E` is the engine entity `HISTORY_ENTITY_PREFIX + E` (docs/FORMAT.md, "Record history").
 */
export const INTERNAL_ENTITY_PREFIX = "~";
export const HISTORY_ENTITY_PREFIX = "~history:";
/** Which indexes each app entity's records' terms hold (docs/FORMAT.md, "Index build state"); key: the entity's name. */
export const INDEXES_ENTITY = "~indexes";
