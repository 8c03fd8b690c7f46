// A module's function JavaScript calls other than as an export (the test
// of tests/js_table_calls.rs):
//   node table-calls.mjs MODULE.wasm N
// MODULE's `rec(d, size)`, not exported, recurses d levels and allocates
// `size` bytes at the bottom. The app calls it N times from MODULE's table
// (as emnapi calls every napi callback: `wasmTable.get(cb)(...)`), N times
// as a funcref global's value, N times as the funcref MODULE hands to an
// import, and once through an export it passes the table's function to.
import { readFileSync } from "node:fs";
const [path, count] = process.argv.slice(2);
const n = Number(count ?? 10);
let given = null;
const { instance } = await WebAssembly.instantiate(readFileSync(path), {
  env: { give: (f) => { given = f; } },
});
const x = instance.exports;
const viaTable = x.tbl.get(0);
for (let i = 0; i < n; i++) viaTable(50, 16);
for (let i = 0; i < n; i++) x.fn.value(50, 32);
x.hand_over();
for (let i = 0; i < n; i++) given(50, 48);
// A wrapper passed back into the module as a funcref.
x.call(viaTable, 50, 64);
console.log("same function from the table twice:", x.tbl.get(0) === viaTable, "length", viaTable.length);
