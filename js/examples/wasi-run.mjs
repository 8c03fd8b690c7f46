// Run a WASI command under Node's own WASI, as an app embedding one would:
//   node wasi-run.mjs MODULE.wasm [ARGS...]
// With heapscope: heapscope run MODULE.wasm --node js/examples/wasi-run.mjs -- MODULE.wasm ARGS...
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { basename } from "node:path";

const [path, ...args] = process.argv.slice(2);
if (!path) {
  console.error("usage: node wasi-run.mjs MODULE.wasm [ARGS...]");
  process.exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [basename(path), ...args],
  env: {},
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
