// What emscripten's dynamic linking and embind do to a module's exports
// and memory (the test of tests/js_side_module.rs):
//   node side-module.mjs MAIN.wasm SIDE.wasm
// MAIN exports `memory`, `table`, `malloc`, `free` and `run`, and imports
// `env.keep` (JavaScript keeps the pointer it is given, as embind keeps the
// contexts it registers). The app puts `run` into MAIN's table and calls it
// from there (emscripten's `addFunction`, `dynCall`), and instantiates SIDE,
// a module not instrumented, with MAIN's memory and a block of it as its
// `env.base` (a side module's `__memory_base`).
import { readFile } from "node:fs/promises";

const [mainPath, sidePath] = process.argv.slice(2);
const kept = [];
const { instance } = await WebAssembly.instantiate(await readFile(mainPath), {
  env: { keep: (p) => kept.push(p) },
});
const { memory, table, malloc, free, run } = instance.exports;
table.set(1, run);
if (table.get(1) !== run) throw new Error("the table gives back another function");
table.get(1)();
const base = malloc(32);
const { instance: side } = await WebAssembly.instantiate(await readFile(sidePath), {
  env: { memory, base },
});
free(malloc(40));
console.log(`kept ${kept.length}, side reads ${side.exports.read()}, pages ${memory.buffer.byteLength / 65536}`);
