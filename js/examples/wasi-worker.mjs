// Run a WASI command under Node's own WASI inside worker_threads Workers,
// and optionally on the main thread too, as an app that moves its wasm off
// the main thread would:
//   node wasi-worker.mjs WHERE MODULE.wasm [ARGS...]
// WHERE: "worker" (one Worker), "both" (the main thread, then a Worker),
// "workers" (two Workers, one after the other), "eval" (the main thread,
// then a Worker made from code, which heapscope cannot load into),
// "options" (one Worker given its own execArgv and env, which Node then
// does not give the parent's --import), "terminate" (one Worker, which the
// main thread terminates once it has its answer), "twice" (two instances on
// the main thread, one after the other, and no Worker).
// With heapscope: heapscope run MODULE.wasm --node js/examples/wasi-worker.mjs -- WHERE MODULE.wasm
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { basename } from "node:path";
import { Worker, isMainThread, workerData } from "node:worker_threads";

async function run(path, args) {
  const wasi = new WASI({
    version: "preview1",
    args: [basename(path), ...args],
    env: {},
    returnOnExit: true,
  });
  const module = await WebAssembly.compile(await readFile(path));
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  return wasi.start(instance);
}

function inWorker(path, args, options = {}) {
  return new Promise((resolve, reject) => {
    const w = options.eval
      ? new Worker(
          `import(${JSON.stringify(import.meta.url)})`,
          { eval: true, workerData: { path, args } },
        )
      : new Worker(new URL(import.meta.url), { workerData: { path, args }, ...options.worker });
    w.on("message", async (code) => {
      if (options.terminate) await w.terminate();
      resolve(code);
    });
    w.on("error", reject);
  });
}

if (isMainThread) {
  const [where, path, ...args] = process.argv.slice(2);
  if (!where || !path) {
    console.error(
      "usage: node wasi-worker.mjs worker|both|workers|eval|options|terminate|twice MODULE.wasm [ARGS...]",
    );
    process.exit(2);
  }
  let code = 0;
  if (where === "twice") {
    code |= await run(path, args);
    process.exitCode = code | (await run(path, args));
    process.exit();
  }
  if (where === "both" || where === "eval") code |= await run(path, args);
  if (where === "workers") code |= await inWorker(path, args);
  const own = { execArgv: [], env: { LANG: "C" } };
  code |= await inWorker(path, args, {
    eval: where === "eval",
    terminate: where === "terminate",
    worker: where === "options" ? own : {},
  });
  process.exitCode = code;
} else {
  const { path, args } = workerData;
  const { parentPort } = await import("node:worker_threads");
  parentPort.postMessage(await run(path, args));
}
