// The AssemblyScript runtime's own count of the sample's allocations and
// frees: runs the sample built with `--use ASC_RTRACE=1` (the runtime then
// reports every block it allocates, resizes, moves and frees through the
// `rtrace` imports) in Node, calls one export as heapscope's test does, and
// prints {"allocs", "frees", "live"} as JSON.
//
//   node rtrace-counts.mjs as-rtrace.wasm leak 1000 10   # leak(1000), ten times
//   node rtrace-counts.mjs as-rtrace.wasm churn 50 1
import { readFileSync } from "node:fs";

const [file, fn, arg, times] = process.argv.slice(2);
let allocs = 0;
let frees = 0;
const live = new Set();
const imports = {
  env: {
    abort() {
      throw new Error("abort");
    },
  },
  rtrace: {
    oninit() {},
    onalloc(block) {
      allocs++;
      live.add(block);
    },
    onresize() {},
    onmove(oldBlock, newBlock) {
      // A reallocation that moved: the old block is freed through onfree.
      allocs++;
      live.add(newBlock);
    },
    onfree(block) {
      frees++;
      live.delete(block);
    },
    onvisit() {
      return 1;
    },
    oncollect() {},
    oninterrupt() {},
    onyield() {},
    // Memory checks of rtrace builds: the address goes through unchanged.
    onstore: (ptr) => ptr,
    onload: (ptr) => ptr,
  },
};
const { instance } = await WebAssembly.instantiate(readFileSync(file), imports);
for (let i = 0; i < Number(times); i++) instance.exports[fn](Number(arg));
console.log(JSON.stringify({ allocs, frees, live: live.size }));
