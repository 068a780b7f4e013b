import { type CellarError, isCellarError } from "../../src/runtime/errors.js";

/** The `CellarError` that `p` rejects with; any other rejection is rethrown, and a resolution fails the test. */
export async function errorOf(p: Promise<unknown>): Promise<CellarError> {
  try {
    await p;
  } catch (e) {
    if (isCellarError(e)) return e;
    throw e;
  }
  throw new Error("expected an error");
}
