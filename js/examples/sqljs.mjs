// A few SQL statements (sqljs-workload.mjs) through sql.js (SQLite built
// with emscripten, npm `sql.js`) and its own glue, as a Node app runs them:
//   node sqljs.mjs DIST_DIR [debug]
// DIST_DIR holds sql-wasm.js and sql-wasm.wasm (or sql-wasm-debug.* with
// `debug`). Prints the query's rows as JSON.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { workload } from "./sqljs-workload.mjs";

const [dist, flavour] = process.argv.slice(2);
if (!dist) {
  console.error("usage: node sqljs.mjs DIST_DIR [debug]");
  process.exit(2);
}
const name = flavour === "debug" ? "sql-wasm-debug" : "sql-wasm";
const require = createRequire(import.meta.url);
const initSqlJs = require(resolve(join(dist, `${name}.js`)));
const SQL = await initSqlJs({ locateFile: (f) => resolve(join(dist, f)) });
console.log(workload(SQL));
