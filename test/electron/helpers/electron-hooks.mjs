// Module hook for example-runner.mjs: `electron` resolves to electron-stub.mjs.
const stub = new URL("./electron-stub.mjs", import.meta.url).href;
export async function resolve(specifier, context, next) {
  return specifier === "electron" ? { url: stub, shortCircuit: true } : next(specifier, context);
}
