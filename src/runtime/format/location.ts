/** Where one live record's value is: a frame (journal commit or segment block) and a slice of its plaintext. */
export class Loc {
  constructor(
    /** File number (journal or segment). */
    readonly file: number,
    readonly frameOffset: number,
    readonly frameLength: number,
    /** Journal: frame sequence; segment: block index. */
    readonly seq: number,
    readonly key: string,
    /** Offset and length of the value inside the frame's plaintext. */
    readonly start: number,
    readonly length: number,
    readonly version: number,
    /** Secondary index terms of the record (interned strings). */
    readonly terms: readonly string[],
  ) {}
}
