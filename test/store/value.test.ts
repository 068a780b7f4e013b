/**
 * The record value envelope (src/runtime/crypto/value.ts; FORMAT.md, "Record values"): sensitive fields are split
 * out and sealed apart, and `fromBinary(public ‖ sensitive)` is the record again, for any values.
 */
import { create, equals, fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConversationSchema, Role } from "../../src/generated/examples/conversations/v1/conversations_pb.js";
import { AiProviderKind, Theme, UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";
import { Sealer } from "../../src/runtime/crypto/seal.js";
import { parseEnvelope, recordAd, type SensitiveKeys, ValueCodec, ValueKind } from "../../src/runtime/crypto/value.js";
import { ProtoWriter } from "../../src/runtime/format/protowire.js";
import { UserSettingsCodec } from "../../src/generated/examples/settings/v1/settings_codec.js";

const sealer = new Sealer(1, new Uint8Array(32).fill(5));
const keys: SensitiveKeys = { storeId: new Uint8Array(16).fill(1), activeKeyId: 1, sensitive: () => sealer };
const text = fc.string({ maxLength: 40 });

describe("record value envelope", () => {
  it("settings: any values round-trip, and the public part never holds the API key", () => {
    const codec = new ValueCodec("settings", UserSettingsSchema, ["aiProvider.apiKey"]);
    fc.assert(
      fc.property(
        fc.record({ language: text, theme: fc.constantFrom(Theme.AUTO, Theme.DARK, Theme.LIGHT) }),
        fc.option(fc.record({ model: text, apiKey: fc.option(text.map((t) => `sk-${t}`), { nil: undefined }), baseUrl: text, kind: fc.constantFrom(AiProviderKind.ANTHROPIC, AiProviderKind.UNSPECIFIED) }), { nil: undefined }),
        (top, ai) => {
          const msg = create(UserSettingsSchema, { ...top, ...(ai ? { aiProvider: ai } : {}) });
          const bytes = codec.encode(msg, "", 1, keys);
          expect(equals(UserSettingsSchema, codec.decode(bytes, "", 1, keys).msg as typeof msg, msg)).toBe(true);
          const env = parseEnvelope(bytes);
          if (ai?.apiKey) {
            expect(env.sealed).not.toBeNull();
            expect(Buffer.from(env.public).includes(Buffer.from(ai.apiKey))).toBe(false);
            // The public part alone is the record without the key: what a redacted reader sees.
            const pub = fromBinary(UserSettingsSchema, env.public);
            expect(pub.aiProvider?.apiKey).toBe("");
            expect(pub.aiProvider?.model).toBe(ai.model);
          } else expect(env.sealed).toBeNull();
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a sensitive path through a repeated field moves the whole list; a path and its parent move the parent whole", () => {
    const conv = create(ConversationSchema, {
      id: "c1",
      title: "t",
      messages: [{ id: "m1", role: Role.USER, body: { case: "content", value: "hello" } }, { id: "m2", role: Role.ASSISTANT }],
    });
    const codec = new ValueCodec("conversations", ConversationSchema, ["messages.id"]);
    const bytes = codec.encode(conv, "c1", 1, keys);
    expect(equals(ConversationSchema, codec.decode(bytes, "c1", 1, keys).msg as typeof conv, conv)).toBe(true);
    expect(fromBinary(ConversationSchema, parseEnvelope(bytes).public).messages).toEqual([]);

    const settings = create(UserSettingsSchema, { language: "en", aiProvider: { model: "m", apiKey: "sk-x" } });
    for (const paths of [["aiProvider", "aiProvider.apiKey"], ["aiProvider.apiKey", "aiProvider"]]) {
      const c = new ValueCodec("settings", UserSettingsSchema, paths);
      const b = c.encode(settings, "", 1, keys);
      expect(fromBinary(UserSettingsSchema, parseEnvelope(b).public).aiProvider, paths.join(",")).toBeUndefined();
      expect(equals(UserSettingsSchema, c.decode(b, "", 1, keys).msg as typeof settings, settings)).toBe(true);
      expect(c.redact({ language: "en" })).toEqual({ language: "en", aiProvider: "[redacted]" });
    }
  });

  it("a sensitive part is bound to its record key and schema version", () => {
    const codec = new ValueCodec("settings", UserSettingsSchema, ["aiProvider.apiKey"]);
    const bytes = codec.encode(create(UserSettingsSchema, { aiProvider: { apiKey: "sk-1" } }), "a", 1, keys);
    expect(() => codec.decode(bytes, "b", 1, keys)).toThrow(/authentication failed \(sensitive part\)/);
    expect(() => codec.decode(bytes, "a", 2, keys)).toThrow(/authentication failed \(sensitive part\)/);
  });

  it("the generated codec's path (the whole message encoded, then split on its bytes) stores the parts the message-level split stores", () => {
    const codec = new ValueCodec("settings", UserSettingsSchema, ["aiProvider.apiKey"], UserSettingsCodec);
    const w = new ProtoWriter();
    const ai = fc.record(
      { model: text, apiKey: text.map((t) => `sk-${t}`), baseUrl: fc.constantFrom("", "https://x.example"), kind: fc.constantFrom(AiProviderKind.ANTHROPIC, AiProviderKind.UNSPECIFIED) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.record({ language: fc.constantFrom("en", "pt-BR"), theme: fc.constantFrom(Theme.AUTO, Theme.DARK) }, { requiredKeys: [] }),
        fc.option(ai, { nil: undefined }),
        fc.boolean(),
        (top, aiProvider, asMessage) => {
          const init = { ...top, ...(aiProvider ? { aiProvider } : {}) };
          // A message as the store's own merge hands it: its empty map left out (singleton.ts `base`).
          const { keyBindings: _, ...message } = create(UserSettingsSchema, init);
          const input = asMessage ? message : init;
          const whole = codec.encodeInput(input, w);
          expect(whole).not.toBeNull();
          expect(whole![0]).toBe(ValueKind.plain);
          const fast = codec.sealSensitive(whole!, "", 1, keys);
          const slow = codec.encode(create(UserSettingsSchema, init), "", 1, keys);
          expect(fast[0]).toBe(slow[0]);
          if (slow[0] === ValueKind.plain) {
            expect(Buffer.from(fast).equals(Buffer.from(slow))).toBe(true);
            return;
          }
          const [f, s] = [parseEnvelope(fast), parseEnvelope(slow)];
          expect(Buffer.from(f.public).equals(Buffer.from(s.public))).toBe(true);
          const ad = recordAd(keys.storeId, 1, "");
          expect(Buffer.from(sealer.open(f.sealed!, ad)).equals(Buffer.from(sealer.open(s.sealed!, ad)))).toBe(true);
          expect(Buffer.from(f.public).includes(Buffer.from(aiProvider!.apiKey!))).toBe(false);
          // Nothing of the key is left in the shared writer's buffer: what the encoder wrote there is zeroed.
          expect(w.buf.subarray(0, whole!.length).every((b) => b === 0)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
