// Run another corpus app in a Node worker_threads Worker, as apps that keep
// wasm work off their main thread do: `node in-worker.mjs APP.mjs ARGS...`.
// The module is compiled and instantiated only in the Worker; its output
// (and its memory line) is the Worker's.
import { Worker } from "node:worker_threads";
const [app, ...argv] = process.argv.slice(2);
const worker = new Worker(new URL(app, import.meta.url), { argv });
const code = await new Promise((resolve, reject) => {
  worker.on("error", reject);
  worker.on("exit", resolve);
});
process.exitCode = code;
