// Small helpers the corpus apps share: a package file's path and bytes,
// and a digest of output bytes (the apps print digests, not megabytes).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/// The path of `rel` (`package/file`) under corpus/node_modules.
export const pkgPath = (rel) => fileURLToPath(new URL(`../node_modules/${rel}`, import.meta.url));
/// The bytes of `rel` under corpus/node_modules.
export const pkgBytes = (rel) => readFileSync(pkgPath(rel));
/// The first 16 hex digits of the SHA-256 of `bytes`.
export const digest = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 16);
/// A deterministic pseudo-random byte sequence (xorshift32) of `n` bytes
/// drawn from a small alphabet, so that it compresses.
export function text(n, seed = 1) {
  const words = ["heap", "scope", "wasm", "memory", "block", "free", "alloc", "grow", " ", "\n"];
  let x = seed >>> 0 || 1;
  const out = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const w = words[x % words.length];
    out.push(w);
    len += w.length;
  }
  return Buffer.from(out.join("").slice(0, n));
}
