// argon2-browser (emscripten, glue in dist/argon2.js): three Argon2 hashes
// of different kinds and memory costs.
import { printMemories } from "./memory.mjs";
import { createRequire } from "node:module";
// Its emscripten glue (2021) streams the module with `fetch` whenever
// `fetch` exists, which in Node 18+ fails on a file path: hidden while it
// loads, it reads the file as it did in older Node.
const fetch = globalThis.fetch;
delete globalThis.fetch;
const argon2 = createRequire(import.meta.url)("argon2-browser");
await argon2.hash({ pass: "", salt: "12345678", time: 1, mem: 8, hashLen: 8 }); // loads the module
globalThis.fetch = fetch;
for (const [type, mem] of [[argon2.ArgonType.Argon2id, 1024], [argon2.ArgonType.Argon2i, 4096], [argon2.ArgonType.Argon2d, 16384]]) {
  const r = await argon2.hash({ pass: "password", salt: "somesaltsalt", time: 2, mem, hashLen: 24, parallelism: 1, type });
  console.log(r.encoded);
}
printMemories();
