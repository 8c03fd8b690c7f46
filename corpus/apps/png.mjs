// @jsquash/png (Squoosh's PNG codec, wasm-bindgen `web` target, init with
// the module's bytes): encode a gradient, decode it back.
import { printMemories } from "./memory.mjs";
import { digest, pkgBytes } from "./common.mjs";
import encode, { init as initEncode } from "@jsquash/png/encode.js";
import decode from "@jsquash/png/decode.js";
await initEncode(pkgBytes("@jsquash/png/codec/pkg/squoosh_png_bg.wasm"));
const w = 300, h = 200;
const data = new Uint8ClampedArray(w * h * 4);
for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x & 255, y, (x ^ y) & 255, 255], (y * w + x) * 4);
const png = new Uint8Array(await encode({ data, width: w, height: h, colorSpace: "srgb" }));
const back = await decode(png.buffer);
console.log(`png ${png.length} bytes ${digest(png)}, decoded ${back.width}x${back.height} ${digest(back.data)}, same ${Buffer.compare(Buffer.from(back.data), Buffer.from(data)) === 0}`);
printMemories();
