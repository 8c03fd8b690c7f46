// Call an Extism plugin's FUNCTION once per line of a messages file with the
// Extism JavaScript SDK (npm @extism/extism), as an app hosting it would:
//   node extism-messages.mjs PLUGIN.wasm FUNCTION MESSAGES.jsonl [OUTPUTS.jsonl]
// With heapscope: heapscope run PLUGIN.wasm --node js/examples/extism-messages.mjs
//   --extism FUNCTION -- PLUGIN.wasm FUNCTION MESSAGES.jsonl
import { readFile, writeFile } from "node:fs/promises";
import createPlugin from "@extism/extism";

const [path, fn, messagesPath, outputsPath] = process.argv.slice(2);
if (!messagesPath) {
  console.error("usage: node extism-messages.mjs PLUGIN.wasm FUNCTION MESSAGES.jsonl [OUTPUTS.jsonl]");
  process.exit(2);
}
// Under heapscope's collector, the SDK is given the hook imports an
// instrumented plugin has (it checks every import before instantiating);
// without it, nothing changes.
const functions = globalThis.heapscope?.extismFunctions() ?? {};
const plugin = await createPlugin(
  { wasm: [{ data: await readFile(path) }] },
  { useWasi: false, runInWorker: false, functions },
);
const lines = (await readFile(messagesPath, "utf8")).split("\n").filter((l) => l.trim());
const out = [];
let failed = 0;
for (const [index, line] of lines.entries()) {
  try {
    const r = await plugin.call(fn, line);
    out.push(JSON.stringify({ index, output: r ? r.text() : "" }));
  } catch (e) {
    failed++;
    out.push(JSON.stringify({ index, error: String(e.message ?? e) }));
  }
}
await plugin.close();
if (outputsPath) await writeFile(outputsPath, out.join("\n") + "\n");
console.error(`${lines.length} messages, ${failed} failed`);
