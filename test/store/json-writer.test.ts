/**
 * The export's JSON writer (typed/json-writer.ts) writes exactly `JSON.stringify(toJson(schema, msg))` of
 * protobuf-es: random messages of every example entity, built from their descriptors (every field kind, map
 * keys of each kind, oneofs, unknown enum numbers, NaN / ±Infinity / -0, 64-bit extremes, timestamps with 0,
 * 3, 6 and 9 fractional digits, nested messages), compared text for text (fast-check).
 */
import { type DescMessage, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entities } from "../../src/generated/index.js";
import { jsonWriter } from "../../src/runtime/typed/json-writer.js";
import { message } from "../helpers/proto-arbitrary.js";

describe("json-writer", () => {
  for (const [prop, def] of Object.entries(entities)) {
    it(`writes what JSON.stringify(toJson()) writes, for \`${prop}\` (${def.schema.typeName})`, () => {
      const schema = def.schema as DescMessage;
      const write = jsonWriter(schema);
      fc.assert(
        fc.property(message(schema, 0), (msg) => {
          let want: string | Error;
          try {
            want = JSON.stringify(toJson(schema, msg!));
          } catch (e) {
            want = e as Error;
          }
          if (want instanceof Error) expect(() => write(msg!)).toThrow();
          else expect(write(msg!)).toBe(want);
        }),
        { numRuns: 300 },
      );
    });
  }
});
