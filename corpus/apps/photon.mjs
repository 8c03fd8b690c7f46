// @silvia-odwyer/photon-node (wasm-bindgen, `nodejs` target): a 256x256
// gradient through a few filters, a resize and a PNG base64 round trip.
import { printMemories } from "./memory.mjs";
import { digest } from "./common.mjs";
import { createRequire } from "node:module";
const photon = createRequire(import.meta.url)("@silvia-odwyer/photon-node");
const w = 256, h = 256;
const px = new Uint8Array(w * h * 4);
for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([x, y, (x * y) & 255, 255], (y * w + x) * 4);
const img = new photon.PhotonImage(px, w, h);
photon.grayscale(img);
photon.gaussian_blur(img, 2);
photon.sharpen(img);
const small = photon.resize(img, 128, 96, 1);
const b64 = small.get_base64();
console.log(`blurred ${digest(img.get_raw_pixels())}, resized ${small.get_width()}x${small.get_height()} ${digest(small.get_raw_pixels())}, png base64 ${b64.length} chars`);
small.free();
img.free();
printMemories();
