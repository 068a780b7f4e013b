// Re-exports one entity through its per-file module, so the test checks index.ts reuses the same object.
export { ApplicationStateEntity as AppStateEntity } from "../../src/generated/examples/appstate/v1/app_state_cellar.js";
