// QuickJS by emscripten (@jitl/quickjs-wasmfile-*-sync, loaded by
// quickjs-emscripten-core): evaluate a script that builds objects, strings
// and closures, then dispose of the context and runtime.
// `node quickjs.mjs release|debug`: the minified release build or the
// debug one (names kept, with a source map).
import { printMemories } from "./memory.mjs";
import { newQuickJSWASMModuleFromVariant } from "quickjs-emscripten-core";
const variant = process.argv[2] === "debug"
  ? (await import("@jitl/quickjs-wasmfile-debug-sync")).default
  : (await import("@jitl/quickjs-wasmfile-release-sync")).default;
const QuickJS = await newQuickJSWASMModuleFromVariant(variant);
const runtime = QuickJS.newRuntime();
const vm = runtime.newContext();
const code = `
  const m = new Map();
  for (let i = 0; i < 5000; i++) m.set("k" + i, { i, s: "v".repeat(i % 50), a: [i, i * 2] });
  let sum = 0;
  for (const [k, v] of m) sum += v.a[1] + v.s.length;
  const fib = (n) => n < 2 ? n : fib(n - 1) + fib(n - 2);
  JSON.stringify({ size: m.size, sum, fib: fib(20), sorted: [...m.keys()].sort().slice(0, 3) });
`;
const result = vm.evalCode(code);
const handle = vm.unwrapResult(result);
console.log(vm.getString(handle));
handle.dispose();
vm.dispose();
runtime.dispose();
printMemories();
