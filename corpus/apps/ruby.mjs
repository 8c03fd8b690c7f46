// Ruby 3.3 (@ruby/3.3-wasm-wasi: CRuby built with wasi-libc, its stdlib in
// the module) through @ruby/wasm-wasi's Node glue (node:wasi): build a hash
// of 20,000 entries, sort, format, and let the GC run.
import { printMemories } from "./memory.mjs";
import { pkgBytes } from "./common.mjs";
import { DefaultRubyVM } from "@ruby/wasm-wasi/dist/node";
const module = await WebAssembly.compile(pkgBytes("@ruby/3.3-wasm-wasi/dist/ruby+stdlib.wasm"));
const { vm } = await DefaultRubyVM(module);
const r = vm.eval(`
  require "json"
  h = {}
  20_000.times { |i| h["k#{i}"] = [i, (i * 7919 % 1000).to_s * 3] }
  GC.start
  top = h.sort_by { |k, v| [-v[1].size, k] }.first(3).map(&:first)
  JSON.generate({ size: h.size, chars: h.values.sum { |v| v[1].size }, top: top, version: RUBY_VERSION })
`);
console.log(r.toString());
printMemories();
