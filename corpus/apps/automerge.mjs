// @automerge/automerge-wasm (wasm-bindgen): two documents edited apart
// and merged, saved and loaded. `node automerge.mjs node|web`: the `nodejs`
// target (instantiated at require) or the `web` one (`initSync(bytes)`).
import { printMemories } from "./memory.mjs";
import { digest, pkgBytes, pkgPath } from "./common.mjs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
let am;
if (process.argv[2] === "web") {
  am = await import(pathToFileURL(pkgPath("@automerge/automerge-wasm/web/automerge_wasm.js")).href);
  am.initSync(pkgBytes("@automerge/automerge-wasm/web/automerge_wasm_bg.wasm"));
} else {
  am = createRequire(import.meta.url)(pkgPath("@automerge/automerge-wasm/nodejs/automerge_wasm.cjs"));
}
const a = am.create({ actor: "aaaa" });
const list = a.putObject("_root", "items", []);
for (let i = 0; i < 200; i++) a.insert(list, i, `item ${i}`);
const text = a.putObject("_root", "text", "");
a.splice(text, 0, 0, "hello automerge ".repeat(50));
a.commit("a", 1);
const b = a.fork("bbbb");
for (let i = 0; i < 100; i++) b.put("_root", `k${i}`, i * 3);
b.commit("b", 2);
a.delete(list, 0);
a.commit("a2", 3);
a.merge(b);
const saved = a.save();
const c = am.load(saved);
console.log(`saved ${saved.length} bytes ${digest(saved)}, items ${c.length("/items")}, keys ${c.keys("_root").length}, text ${c.text("/text").length} chars`);
for (const d of [a, b, c]) d.free();
printMemories();
