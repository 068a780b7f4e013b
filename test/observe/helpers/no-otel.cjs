// Preloaded (`node --require`) into a child process: `@opentelemetry/api` cannot be resolved, as in an
// app that did not install the optional peer dependency.
const Module = require("node:module");
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === "@opentelemetry/api" || request.startsWith("@opentelemetry/api/")) {
    const e = new Error(`Cannot find module '${request}'`);
    e.code = "MODULE_NOT_FOUND";
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
