// Render an SVG (resvg-workload.mjs) to PNG with resvg-wasm (a wasm-bindgen
// build, npm `@resvg/resvg-wasm`) and its own glue, as a Node app does:
//   node resvg.mjs PACKAGE_DIR OUT.png
// Prints the PNG's size and SHA-256.
import { readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { render } from "./resvg-workload.mjs";

const [pkg, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node resvg.mjs PACKAGE_DIR OUT.png");
  process.exit(2);
}
const { initWasm, Resvg } = await import(pathToFileURL(resolve(join(pkg, "index.mjs"))).href);
await initWasm(readFile(join(pkg, "index_bg.wasm")));
const png = render(Resvg);
await writeFile(out, png);
console.log(`png ${png.length} bytes sha256 ${createHash("sha256").update(png).digest("hex")}`);
