// @bokuweb/zstd-wasm (emscripten): compress and decompress 300 kB at
// three levels.
import { printMemories } from "./memory.mjs";
import { digest, text } from "./common.mjs";
import { createRequire } from "node:module";
const zstd = createRequire(import.meta.url)("@bokuweb/zstd-wasm");
await zstd.init();
const input = text(300000, 3);
for (const level of [1, 3, 10]) {
  const c = zstd.compress(input, level);
  const d = zstd.decompress(c);
  console.log(`level ${level}: ${c.length} bytes ${digest(c)}, back ${Buffer.compare(Buffer.from(d), input) === 0}`);
}
printMemories();
