/**
 * No stored or submitted value reaches the logger, a metric or a span: a store driven through puts, gets,
 * queries, updates, deletes, a batch, validation errors, a wrong passphrase, compaction, backups and damage,
 * with distinctive values in every field (sensitive ones included), keys and the passphrase; then every
 * logger call, every exported metric and every span is scanned for them (and for the store's full path).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserProfileEntity as ProfileEntity } from "../../src/generated/examples/profile/v1/profile_cellar.js";
import { TaskEntity } from "../../src/generated/examples/tasks/v1/tasks_cellar.js";
import { keys, openStore } from "../../src/runtime/index.js";
import { damageSegment } from "../helpers/files.js";
import { memoryLogger, sdk } from "./helpers/sdk.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cellar-novalues-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const CHEAP = { opsLimit: 1, memLimit: 8192 };
const entities = { profiles: ProfileEntity, tasks: TaskEntity };
/** Every distinctive value the app submits. */
const SECRETS = ["KEYQX7", "NAMEQX7", "MAILQX7", "TOKENQX7", "TITLEQX7", "NOTEQX7", "TAGQX7", "PASSQX7", "WRONGQX7", "LABELQX7", "BADMAILQX7", "LONGQX7", "FILEQX7"];

describe("no value reaches the logger or the telemetry", () => {
  it("after puts, gets, queries, errors, compaction, backups and damage", async () => {
    const otel = sdk();
    const log = memoryLogger();
    const dir = path.join(tmp, "store");
    const options = {
      dir,
      key: keys.passphrase("PASSQX7-passphrase", CHEAP),
      logger: log.logger,
      telemetry: { meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider },
      backups: { every: "1d", keep: { last: 2 } },
      verifyOnOpen: true,
    };
    let store = await openStore(entities, options);
    for (let i = 0; i < 20; i++) {
      await store.profiles.put({ id: `KEYQX7-${i}`, displayName: `NAMEQX7 ${i}`, email: `MAILQX7${i}@example.com`, authToken: `TOKENQX7-${i}` });
      await store.tasks.put({ id: `KEYQX7-t${i}`, title: `TITLEQX7 ${i}`, notes: "NOTEQX7", tags: ["TAGQX7"] });
    }
    await store.profiles.get("KEYQX7-1");
    await store.profiles.getMany(["KEYQX7-2", "KEYQX7-missing"]);
    await store.tasks.query({ tags: "TAGQX7" });
    await store.tasks.count({ tags: "TAGQX7" });
    await store.profiles.update("KEYQX7-3", { displayName: "NAMEQX7 updated" });
    await store.profiles.delete("KEYQX7-4");
    await store.batch((tx) => tx.tasks.put({ id: "KEYQX7-b", title: "TITLEQX7 batch" }));
    const errors = [
      store.profiles.put({ id: "KEYQX7-e1", email: "BADMAILQX7 not an address" }),
      store.profiles.put({ id: "KEYQX7-e2", displayName: `LONGQX7${"x".repeat(200)}` }),
      store.profiles.update("KEYQX7-missing", { displayName: "NAMEQX7" }),
      store.batch((tx) => {
        tx.tasks.put({ id: "KEYQX7-b2", title: "TITLEQX7" });
        tx.profiles.put({ id: "KEYQX7-b3", email: "BADMAILQX7" });
      }),
      store.tasks.query({ tags: { gt: "TAGQX7" }, nope: "TAGQX7" } as never),
    ];
    for (const e of errors) await expect(e).rejects.toBeTruthy();
    await store.compact();
    await store.backup({ to: path.join(tmp, "FILEQX7.backup"), label: "LABELQX7" });
    await store.close();
    await expect(openStore(entities, { ...options, key: keys.passphrase("WRONGQX7", CHEAP) })).rejects.toMatchObject({ code: "E_KEY" });
    damageSegment(dir);
    store = await openStore(entities, options);
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await store.profiles.get(`KEYQX7-${i}`).catch(() => null);
    await otel.collect();
    await store.close();
    await otel.collect();

    const logged = JSON.stringify(log.calls);
    const exported = otel.dump();
    // The scan sees what it should: events were logged, metrics and spans exported.
    const events = new Set(log.events().map((e) => e.event));
    for (const e of ["open", "compaction", "backup", "recovery", "close"]) expect(events).toContain(e);
    expect(exported).toContain("db.client.operation.duration");
    expect(exported).toContain("cellar.open");
    expect(exported).toContain("E_VALIDATION");
    for (const s of SECRETS) {
      expect(logged, s).not.toContain(s);
      expect(exported, s).not.toContain(s);
    }
    expect(logged).not.toContain(tmp);
    expect(exported).not.toContain(tmp);
    await otel.shutdown();
  });
});
