// Test-only startup aid, preloaded (`node --require`) into the protoc plugins and tsc runs that the codegen
// tests spawn dozens of times: a V8 code cache for the few very large CommonJS files they load (TypeScript's
// typescript.js, which @bufbuild/protoplugin imports in protoc-gen-es and protoc-gen-cellar, and tsc's
// _tsc.js). Compiling those takes about a second per process here; with the cache it is a fraction of that.
// What runs is unchanged: the same source is compiled with the same CommonJS wrapper and called as Node
// calls it; only V8's compile step reads its result from the cache (Node 22 has this built in as
// `module.enableCompileCache()`; Node 20 does not). Entries are keyed by Node version, path and content,
// written atomically (rename), and live in the OS temp dir.
"use strict";
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const os = require("node:os");
const path = require("node:path");
const vm = require("node:vm");

const cacheDir = path.join(os.tmpdir(), "cellar-test-v8-cache");
const minSize = 1 << 20; // only the big ones: small modules compile faster than a cache read
const compile = Module.prototype._compile;

Module.prototype._compile = function (content, filename) {
  if (typeof content !== "string" || content.length < minSize || filename.endsWith(".json")) return compile.call(this, content, filename);
  const key = createHash("sha256").update(`${process.version}\0${process.arch}\0${filename}\0`).update(content).digest("hex").slice(0, 32);
  const file = path.join(cacheDir, `${path.basename(filename)}-${key}`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(file);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(content), {
    filename,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const wrapper = script.runInThisContext({ displayErrors: true });
  const mod = this;
  const require = (id) => mod.require(id);
  require.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
  require.resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  const result = wrapper.call(mod.exports, mod.exports, require, mod, filename, path.dirname(filename));
  if (cachedData === undefined || script.cachedDataRejected) {
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, file);
    } catch {
      // A cache we cannot write only costs time.
    }
  }
  return result;
};
