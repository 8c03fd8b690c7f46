// What heapscope does when a call from JavaScript reaches an instrumented
// module without its collector's wrapper (the test of
// tests/js_table_calls.rs):
//   node bypass-collector.mjs INSTRUMENTED.wasm SESSION
// The collector's `Session` is used by hand, without `install()`: the
// table's function is the bare wasm function, so no call resets the shadow
// stack and it piles up, 1,001 frames a call, until a frame's store runs
// past heapscope's shadow memory and traps. Every 100th call allocates 16
// bytes. The session is written to SESSION, what the session could not
// record to SESSION.unrecorded, as `register.mjs` does.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "../heapscope.mjs";

const [wasm, out] = process.argv.slice(2);
const session = new Session();
session.onUnrecorded = (why) => appendFileSync(`${out}.unrecorded`, `${why}\n`);
const { instance } = await WebAssembly.instantiate(readFileSync(wasm), {
  heapscope: session.imports(),
  env: { give() {} },
});
session.attach(instance);
const rec = instance.exports.tbl.get(0);
let calls = 0;
let end = { code: 0 };
try {
  for (; calls < 100000; calls++) rec(1000, calls % 100 === 0 ? 16 : 0);
} catch (e) {
  if (!(e instanceof WebAssembly.RuntimeError)) throw e;
  end = { code: 0, trapped: true, message: `wasm trap: ${e.message}`, stack: e.stack };
}
writeFileSync(out, session.finish(end));
console.log(`${calls} calls, then: ${end.message ?? "no trap"}`);
