// The environment emscripten's glue gives a module, fixed for the
// examples' exact numbers; imported first by the apps whose glue is
// emscripten's (sqljs-workload.mjs, sqlite-wasm.mjs).
//
// emscripten's glue gives the module an environment (getenv), which SQLite
// reads and copies into its heap: `_`, the script's path (process.argv[1]),
// and `LANG`, from the locale (navigator.language). The examples' numbers
// would then follow the checkout's path (3 bytes more in a clone at
// /tmp/ci-clone than at /work/main) and the machine's locale: both are
// fixed here, before any glue is loaded (import this module first).
if (typeof process !== "undefined" && process.argv?.length > 1) {
  process.argv[1] = "/app/sqljs-example.mjs";
}
try {
  if (globalThis.navigator) {
    Object.defineProperty(globalThis.navigator, "language", { value: "en-US", configurable: true });
  }
} catch {
  // A navigator whose language cannot be set keeps its own.
}
