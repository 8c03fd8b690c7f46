// Render an SVG to PNG with resvg-wasm (a wasm-bindgen build, npm
// `@resvg/resvg-wasm`) and its own glue, as a Node app would:
//   node resvg.mjs PACKAGE_DIR OUT.png
// Prints the PNG's size and SHA-256.
import { readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node resvg.mjs PACKAGE_DIR OUT.png");
  process.exit(2);
}
const { initWasm, Resvg } = await import(pathToFileURL(resolve(join(pkg, "index.mjs"))).href);
await initWasm(readFile(join(pkg, "index_bg.wasm")));
const shapes = Array.from({ length: 40 }, (_, i) =>
  `<circle cx="${20 + (i % 8) * 45}" cy="${30 + Math.floor(i / 8) * 45}" r="${8 + (i % 5) * 3}" fill="hsl(${i * 9},70%,50%)" stroke="#222" stroke-width="2"/>`,
).join("");
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="260" viewBox="0 0 400 260"><rect width="400" height="260" fill="#f4f1ea"/>${shapes}<path d="M10 250 C 100 150, 300 350, 390 240" stroke="#06c" stroke-width="5" fill="none"/></svg>`;
const resvg = new Resvg(svg, { fitTo: { mode: "width", value: 800 } });
const png = resvg.render().asPng();
await writeFile(out, png);
console.log(`png ${png.length} bytes sha256 ${createHash("sha256").update(png).digest("hex")}`);
