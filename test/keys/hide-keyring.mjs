// `node --import ./hide-keyring.mjs`: makes `@napi-rs/keyring` unresolvable, as on a platform without it.
import { register } from "node:module";

register("./hide-keyring-hooks.mjs", import.meta.url);
