// @oxc-parser/wasm (wasm-bindgen, `nodejs` target): parse a generated
// JavaScript file, print the AST's size and the first statement's type.
// `node oxc.mjs keep`: the result is never `.free()`d (JavaScript holds it
// to the end, as an app that leaves it to the garbage collector does).
import { printMemories } from "./memory.mjs";
import { createRequire } from "node:module";
const { parseSync } = createRequire(import.meta.url)("@oxc-parser/wasm");
const lines = [];
for (let i = 0; i < 400; i++) {
  lines.push(`export function f${i}(a, b) { const x = [a, b, ${i}].map((v) => v * 2); return { x, s: \`\${a}-${i}\` }; }`);
}
const r = parseSync(lines.join("\n"), { sourceFilename: "gen.js" });
const program = typeof r.program === "string" ? JSON.parse(r.program) : r.program;
console.log(`${program.body.length} statements, first ${program.body[0].type}, ${r.errors.length} errors, ${r.comments.length} comments`);
if (process.argv[2] !== "keep") r.free?.();
printMemories();
