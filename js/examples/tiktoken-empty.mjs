// tiktoken (wasm-bindgen, `nodejs` target) encoding an empty string among
// others: wasm-bindgen's glue passes "" as `__wbindgen_malloc(0, 1)`, which
// returns the placeholder pointer 1 without allocating.
//   node tiktoken-empty.mjs PACKAGE_DIR
// Prints each text's token count.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [pkg] = process.argv.slice(2);
if (!pkg) {
  console.error("usage: node tiktoken-empty.mjs PACKAGE_DIR");
  process.exit(2);
}
const { get_encoding } = createRequire(import.meta.url)(resolve(join(pkg, "tiktoken.cjs")));
const enc = get_encoding("cl100k_base");
const counts = ["", "heapscope", "", "a zero-size placeholder is no block"].map(
  (t) => enc.encode(t).length,
);
enc.free();
console.log(counts.join(" "));
