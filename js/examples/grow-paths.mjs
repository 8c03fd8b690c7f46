// Grows a module's memory by every path there is (the test of
// tests/js_collector.rs that counts each growth once):
//   node grow-paths.mjs MAIN.wasm HELPER.wasm
// MAIN exports `memory` and `run`, and imports `env.grow_js` (JavaScript
// grows the memory) and `env.grow_other` (HELPER, a module importing the
// memory, grows it with its own memory.grow). Prints the final size.
import { readFile } from "node:fs/promises";

const [main, helperPath] = process.argv.slice(2);
let memory;
let helper;
const { instance } = await WebAssembly.instantiate(await readFile(main), {
  env: {
    grow_js: (n) => memory.grow(n),
    grow_other: (n) => helper.exports.grow(n),
  },
});
memory = instance.exports.memory;
({ instance: helper } = await WebAssembly.instantiate(await readFile(helperPath), {
  env: { memory },
}));
instance.exports.run();
memory.grow(1); // the app, between calls
helper.exports.grow(1); // after the last call: no hook sees it
console.log(`pages ${memory.buffer.byteLength / 65536}`);
