/** A collection of tasks keyed by an integer field (`estimateMinutes`, uint32): integer key order in tests. */
import { TaskSchema } from "../../src/generated/examples/tasks/v1/tasks_pb.js";
import { TaskInputSchema } from "../../src/generated/examples/tasks/v1/tasks_zod.js";
import { defineCollection } from "../../src/runtime/index.js";

export const Numbered = defineCollection<typeof TaskSchema, number>({
  name: "numbered",
  version: 1,
  schema: TaskSchema,
  validator: TaskInputSchema,
  key: "estimateMinutes",
  keyKind: "uint32",
  indexes: [],
  sensitive: [],
});
