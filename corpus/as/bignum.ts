// as-bignum (npm, AssemblyScript) with AssemblyScript's default runtime
// (incremental GC over TLSF): 128- and 256-bit factorials and their
// decimal strings, built by scripts/corpus.sh with asc --bindings esm and
// a source map.
import { u128, u256 } from "as-bignum/assembly";

export function factorials(n: i32): string {
  let f = u128.One;
  let g = u256.One;
  const parts = new Array<string>();
  for (let i = 1; i <= n; i++) {
    f = f * u128.fromI32(i);
    g = g * u256.fromI32(i);
    if (i % 5 == 0) parts.push(i.toString() + "!=" + f.toString());
  }
  parts.push("u256 " + g.toString());
  return parts.join(",");
}
