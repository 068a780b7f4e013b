/**
 * Cellar, through its generated repositories. PROVISIONAL: written against the API described in
 * issue 6 before `src/runtime/index.ts` and `src/generated/index.ts` existed; replaced once they do.
 */
import type { StoreAdapter, SystemSpec } from "../adapter.js";

function unavailable(): Promise<StoreAdapter> {
  return Promise.reject(new Error("src/generated/index.ts and src/runtime/index.ts do not exist yet"));
}

export const cellarSealed: SystemSpec = {
  id: "cellar",
  label: "Cellar",
  kind: "cellar",
  durability: "encryption + compression + validation on, `durability: \"full\"`",
  create: unavailable,
};

export const cellarPlain: SystemSpec = {
  id: "cellar-plain",
  label: "Cellar plain",
  kind: "cellar",
  durability: "`encryption: \"none\"`, compression off, `durability: \"full\"`",
  create: unavailable,
};
