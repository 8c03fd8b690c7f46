// tiktoken (wasm-bindgen, `nodejs` target, the glue instantiates at
// import): cl100k_base and o200k_base encode and decode a text.
import { printMemories } from "./memory.mjs";
import { text } from "./common.mjs";
import { createRequire } from "node:module";
const { get_encoding } = createRequire(import.meta.url)("tiktoken");
const input = text(20000).toString();
for (const name of ["cl100k_base", "o200k_base"]) {
  const enc = get_encoding(name);
  const tokens = enc.encode(input);
  const back = new TextDecoder().decode(enc.decode(tokens));
  console.log(`${name}: ${tokens.length} tokens, first ${Array.from(tokens.slice(0, 5))}, round trip ${back === input}`);
  enc.free();
}
printMemories();
