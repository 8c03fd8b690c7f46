// @oxc-parser/binding-wasm32-wasi (a napi-rs wasm32-wasi build run by
// emnapi, which calls every napi callback as `wasmTable.get(cb)(...)`):
// parse N small generated TypeScript files and print a hash of the
// results. `node oxc-napi.mjs N` (20 by default).
import { printMemories } from "./memory.mjs";
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
const require = createRequire(import.meta.url);
const oxc = require("@oxc-parser/binding-wasm32-wasi");
const n = Number(process.argv[2] ?? 20);
const h = createHash("sha256");
let nodes = 0;
for (let i = 0; i < n; i++) {
  const src = `const a${i} = (x) => x * ${i};\nexport function g${i}(y: number): string { return String(a${i}(y)) + ${JSON.stringify("z".repeat(i))}; }\n/* c${i} */ import x${i} from 'm${i}';
class K${i} { m() { return [1,2,3].map(v => v + ${i}); } }`;
  const r = oxc.parseSync(`f${i}.ts`, src, {});
  const prog = JSON.stringify([r.program, r.module, r.comments, r.errors.length]);
  h.update(prog);
  nodes += prog.length;
}
console.log("oxc-parser wasi", n, "programs, chars", nodes, "sha", h.digest("hex").slice(0, 16));
if (process.argv[3] === "memory") printMemories();
process.exit(0);
