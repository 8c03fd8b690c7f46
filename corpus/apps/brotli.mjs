// brotli-wasm (wasm-bindgen): compress and decompress 200 kB at three
// qualities, and through the streaming API. `node brotli.mjs node|web`:
// the `nodejs` target (pkg.node, instantiated at import) or the `web` one
// (pkg.web, `init(bytes)`).
import { printMemories } from "./memory.mjs";
import { digest, pkgBytes, pkgPath, text } from "./common.mjs";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";
const target = process.argv[2];
let brotli;
if (target === "web") {
  const web = await import(pathToFileURL(pkgPath("brotli-wasm/pkg.web/brotli_wasm.js")).href);
  await web.default(pkgBytes("brotli-wasm/pkg.web/brotli_wasm_bg.wasm"));
  brotli = web;
} else {
  brotli = createRequire(import.meta.url)(pkgPath("brotli-wasm/pkg.node/brotli_wasm.js"));
}
const input = text(200000, 7);
for (const quality of [1, 5, 9]) {
  const c = brotli.compress(input, { quality });
  const d = brotli.decompress(c);
  console.log(`quality ${quality}: ${c.length} bytes ${digest(c)}, back ${Buffer.compare(Buffer.from(d), input) === 0}`);
}
const stream = new brotli.CompressStream(6);
const parts = [];
for (let i = 0; i < input.length; i += 16384) {
  const r = stream.compress(input.subarray(i, i + 16384), 1 << 16);
  parts.push(r.buf);
  r.free();
}
const end = stream.compress(undefined, 1 << 16);
parts.push(end.buf);
end.free();
stream.free();
const streamed = Buffer.concat(parts.map((p) => Buffer.from(p)));
console.log(`stream: ${streamed.length} bytes ${digest(streamed)}`);
printMemories();
