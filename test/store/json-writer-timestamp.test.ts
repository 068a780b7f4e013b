/**
 * The export's Timestamp text (typed/json-writer.ts formats the date without a `Date`): the same as
 * protobuf-es's `toJson` over the whole range it accepts (years 1 to 9999, before and after 1970), leap
 * days of 1600, 1900, 2000 and 2100, and each width of the fraction; what it refuses still throws.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonWriter } from "../../src/runtime/typed/json-writer.js";

const write = jsonWriter(TimestampSchema);
const ts = (seconds: bigint, nanos = 0) => create(TimestampSchema, { seconds, nanos });
const expected = (t: ReturnType<typeof ts>) => JSON.stringify(toJson(TimestampSchema, t));

describe("json-writer: Timestamp", () => {
  it("writes what toJson writes at the edges of the range and around leap days", () => {
    const at = (iso: string) => BigInt(Date.parse(iso) / 1000);
    const edges = [
      "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
      "1600-02-29T12:00:00Z", "1600-03-01T00:00:00Z", "1900-02-28T23:59:59Z", "1900-03-01T00:00:00Z",
      "2000-02-29T00:00:00Z", "2000-12-31T23:59:59Z", "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z",
      "0004-02-29T00:00:00Z", "0100-03-01T00:00:00Z", "0400-02-29T23:59:59Z",
    ];
    for (const e of edges) for (const nanos of [0, 5e8, 123456000, 1]) expect(write(ts(at(e), nanos)), e).toBe(expected(ts(at(e), nanos)));
  });

  it("writes what toJson writes for any second of the range", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -62135596800n, max: 253402300799n }), fc.integer({ min: 0, max: 999999999 }), (s, n) => {
        expect(write(ts(s, n))).toBe(expected(ts(s, n)));
        expect(write(ts(s))).toBe(expected(ts(s)));
      }),
      { numRuns: 5000 },
    );
  });

  it("refuses what toJson refuses", () => {
    for (const t of [ts(-62135596801n), ts(253402300800n), ts(0n, -1), ts(0n, 1e9)]) {
      expect(() => write(t)).toThrow();
      expect(() => toJson(TimestampSchema, t)).toThrow();
    }
  });
});
