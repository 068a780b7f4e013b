/**
 * `cellar/electron`'s types, checked by `tsc` (each `@ts-expect-error` fails the check when the line
 * compiles): the renderer's client is typed from the app's entities, the allow-list and the preload's shape
 * refuse names and operations that do not exist.
 */
import { describe, expectTypeOf, it } from "vitest";
import type { entities } from "../../src/generated/index.js";
import type { AllowList, RemoteError, RendererStore, RendererWatch, StoreShape } from "../../src/runtime/electron/index.js";
import type { StoredRecord } from "../../src/runtime/index.js";
import type { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import type { UserSettingsSchema } from "../../src/generated/examples/settings/v1/settings_pb.js";

type Cellar = RendererStore<typeof entities>;
declare const cellar: Cellar; // never touched at run time: only in `typeOnly`, which is not called

describe("cellar/electron types", () => {
  it("window.cellar is typed from the app's entities", () => {
    expectTypeOf<Cellar["tasks"]["get"]>().returns.toEqualTypeOf<Promise<StoredRecord<typeof TaskSchema> | undefined>>();
    expectTypeOf<Cellar["tasks"]["query"]>().parameter(0).toHaveProperty("status");
    expectTypeOf<RemoteError["code"]>().toEqualTypeOf<string>();
    const typeOnly = () => {
      expectTypeOf(cellar.tasks.watch("t1")).toEqualTypeOf<RendererWatch<StoredRecord<typeof TaskSchema> | undefined>>();
      expectTypeOf(cellar.tasks.watch({ status: 1 })).toEqualTypeOf<RendererWatch<readonly StoredRecord<typeof TaskSchema>[]>>();
      expectTypeOf(cellar.settings.watch()).toEqualTypeOf<RendererWatch<StoredRecord<typeof UserSettingsSchema>>>();
      // @ts-expect-error a task's key is a string
      void cellar.tasks.get(1);
      // @ts-expect-error no field `owner` on a task
      void cellar.tasks.put({ id: "t", title: "t", owner: "me" });
      // @ts-expect-error a function cannot cross IPC: `update` takes a patch
      void cellar.tasks.update("t", (t) => ({ title: t.title }));
      // @ts-expect-error `archive` is not offered to renderers
      void cellar.tasks.archive;
      // @ts-expect-error `title` is not an indexed field
      void cellar.tasks.query({ title: "t" });
      void cellar.settings.get("ui");
    };
    void typeOnly;
  });

  it("the allow-list and the preload's shape refuse unknown entities, operations and kinds", () => {
    const ok: AllowList<typeof entities> = { tasks: ["read", "put", "watch"], settings: { ops: ["get", "set"], sensitive: true } };
    // @ts-expect-error `query` is no operation of a singleton
    const noQuery: AllowList<typeof entities> = { settings: ["query"] };
    // @ts-expect-error `archive` is no operation the bridge grants
    const noArchive: AllowList<typeof entities> = { tasks: ["archive"] };
    // @ts-expect-error no entity `notes`
    const noEntity: AllowList<typeof entities> = { notes: ["get"] };
    const shape: StoreShape<typeof entities> = { tasks: "collection", settings: "singleton" };
    // @ts-expect-error `settings` is a singleton
    const wrongKind: StoreShape<typeof entities> = { settings: "collection" };
    void [ok, noQuery, noArchive, noEntity, shape, wrongKind];
  });
});
