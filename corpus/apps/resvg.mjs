// @resvg/resvg-wasm (wasm-bindgen `web` target, no names): render an SVG
// of 200 shapes and text-free paths to PNG.
import { printMemories } from "./memory.mjs";
import { digest, pkgBytes } from "./common.mjs";
import { initWasm, Resvg } from "@resvg/resvg-wasm";
await initWasm(pkgBytes("@resvg/resvg-wasm/index_bg.wasm"));
const shapes = [];
for (let i = 0; i < 200; i++) {
  shapes.push(`<circle cx="${(i * 37) % 400}" cy="${(i * 53) % 300}" r="${5 + (i % 20)}" fill="hsl(${i * 7},70%,50%)" opacity="0.6"/>`);
  shapes.push(`<path d="M${i} 0 L${400 - i} 300" stroke="#${(i * 4099).toString(16).padStart(6, "0").slice(0, 6)}" stroke-width="${1 + (i % 3)}"/>`);
}
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><rect width="400" height="300" fill="white"/>${shapes.join("")}</svg>`;
const r = new Resvg(svg, { fitTo: { mode: "width", value: 800 } });
const img = r.render();
const png = img.asPng();
console.log(`${img.width}x${img.height}, png ${png.length} bytes ${digest(png)}`);
img.free();
r.free();
printMemories();
