// sqljs.mjs's statements (sqljs-workload.mjs) through sql.js and its own
// glue, run inside a worker_threads Worker, as an app that keeps SQLite off
// its main thread does (WHERE `worker`), or on the main thread (`main`: the
// same script, so that the glue sees the same program name):
//   node sqljs-worker.mjs WHERE DIST_DIR [debug]
// Prints the query's rows as JSON, as sqljs.mjs does.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { workload } from "./sqljs-workload.mjs";

async function sql(dist, flavour) {
  const name = flavour === "debug" ? "sql-wasm-debug" : "sql-wasm";
  const require = createRequire(import.meta.url);
  const initSqlJs = require(resolve(join(dist, `${name}.js`)));
  return initSqlJs({ locateFile: (f) => resolve(join(dist, f)) });
}

if (isMainThread) {
  const [where, dist, flavour] = process.argv.slice(2);
  if (!dist || !["main", "worker"].includes(where)) {
    console.error("usage: node sqljs-worker.mjs main|worker DIST_DIR [debug]");
    process.exit(2);
  }
  if (where === "main") {
    console.log(workload(await sql(dist, flavour)));
    process.exit();
  }
  const worker = new Worker(new URL(import.meta.url), { workerData: { dist, flavour } });
  worker.on("message", (rows) => console.log(rows));
  worker.on("error", (e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  const { dist, flavour } = workerData;
  parentPort.postMessage(workload(await sql(dist, flavour)));
}
