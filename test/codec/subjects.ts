/** The entities under test: every committed example entity with a generated codec, and the generated fixtures. */
import type { DescMessage } from "@bufbuild/protobuf";
import type { ZodType } from "zod";
import * as appstateCodec from "../../src/generated/examples/appstate/v1/app_state_codec.js";
import * as appstatePb from "../../src/generated/examples/appstate/v1/app_state_pb.js";
import * as appstateZod from "../../src/generated/examples/appstate/v1/app_state_zod.js";
import * as conversationsCodec from "../../src/generated/examples/conversations/v1/conversations_codec.js";
import * as conversationsPb from "../../src/generated/examples/conversations/v1/conversations_pb.js";
import * as conversationsZod from "../../src/generated/examples/conversations/v1/conversations_zod.js";
import * as focusCodec from "../../src/generated/examples/focus/v1/focus_codec.js";
import * as focusPb from "../../src/generated/examples/focus/v1/focus_pb.js";
import * as focusZod from "../../src/generated/examples/focus/v1/focus_zod.js";
import * as layoutsCodec from "../../src/generated/examples/layouts/v1/layouts_codec.js";
import * as layoutsPb from "../../src/generated/examples/layouts/v1/layouts_pb.js";
import * as layoutsZod from "../../src/generated/examples/layouts/v1/layouts_zod.js";
import * as profileCodec from "../../src/generated/examples/profile/v1/profile_codec.js";
import * as profilePb from "../../src/generated/examples/profile/v1/profile_pb.js";
import * as profileZod from "../../src/generated/examples/profile/v1/profile_zod.js";
import * as settingsCodec from "../../src/generated/examples/settings/v1/settings_codec.js";
import * as settingsPb from "../../src/generated/examples/settings/v1/settings_pb.js";
import * as settingsZod from "../../src/generated/examples/settings/v1/settings_zod.js";
import * as tasksCodec from "../../src/generated/examples/tasks/v1/tasks_codec.js";
import * as tasksPb from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import * as tasksZod from "../../src/generated/examples/tasks/v1/tasks_zod.js";
import type { EntityCodec } from "../../src/runtime/format/protowire.js";
import { generateFixtures, type Generated, type Subject } from "./helpers.js";

type Module = Record<string, unknown>;

/** Every `<Name>Codec` export of a codec module, with `<Name>Schema` and `<Name>InputSchema`. */
export function subjectsOf(pb: Module, zod: Module, codec: Module): Subject[] {
  const out: Subject[] = [];
  for (const [k, v] of Object.entries(codec)) {
    if (!k.endsWith("Codec")) continue;
    const name = k.slice(0, -"Codec".length);
    const schema = pb[`${name}Schema`] as DescMessage | undefined;
    const validator = zod[`${name}InputSchema`] as ZodType | undefined;
    if (!schema || !validator) throw new Error(`no schema or validator for ${k}`);
    out.push({ name, schema, zod: validator, codec: v as EntityCodec });
  }
  return out;
}

export const exampleSubjects: Subject[] = [
  subjectsOf(appstatePb, appstateZod, appstateCodec),
  subjectsOf(conversationsPb, conversationsZod, conversationsCodec),
  subjectsOf(focusPb, focusZod, focusCodec),
  subjectsOf(layoutsPb, layoutsZod, layoutsCodec),
  subjectsOf(profilePb, profileZod, profileCodec),
  subjectsOf(settingsPb, settingsZod, settingsCodec),
  subjectsOf(tasksPb, tasksZod, tasksCodec),
].flat();

export async function fixtureSubjects(): Promise<{ generated: Generated; subjects: Subject[] }> {
  const generated = await generateFixtures();
  const { kitchen, extra } = generated;
  return {
    generated,
    subjects: [...subjectsOf(kitchen.pb, kitchen.zod, kitchen.codec), ...subjectsOf(extra.pb, extra.zod, extra.codec)],
  };
}
