// sqljs-statements.mjs through sql.js's Node glue (the debug build, whose
// wasm is the one sql.js's Web Worker loads), on the main thread:
//   node sqljs-exec.mjs DIST_DIR
// Prints the query's rows as JSON, as sqljs-worker.html shows them.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { STATEMENTS } from "./sqljs-statements.mjs";
import { openDatabase } from "./sqljs-workload.mjs";

const [dist] = process.argv.slice(2);
if (!dist) {
  console.error("usage: node sqljs-exec.mjs DIST_DIR");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const initSqlJs = require(resolve(join(dist, "sql-wasm-debug.js")));
const SQL = await initSqlJs({ locateFile: (f) => resolve(join(dist, f)) });
const db = openDatabase(SQL);
let last = null;
for (const sql of STATEMENTS) last = db.exec(sql);
db.close();
console.log(JSON.stringify(last[0].values));
