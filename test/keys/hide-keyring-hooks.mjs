// Module resolve hook for hide-keyring.mjs.
export async function resolve(specifier, context, next) {
  if (specifier === "@napi-rs/keyring" || specifier.startsWith("@napi-rs/keyring/")) {
    const err = new Error(`Cannot find package '${specifier}' (hidden by the keychain test)`);
    err.code = "ERR_MODULE_NOT_FOUND";
    throw err;
  }
  return next(specifier, context);
}
