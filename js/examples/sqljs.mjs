// A few SQL statements through sql.js (SQLite built with emscripten, npm
// `sql.js`) and its own glue, as a Node app would run them:
//   node sqljs.mjs DIST_DIR [debug]
// DIST_DIR holds sql-wasm.js and sql-wasm.wasm (or sql-wasm-debug.* with
// `debug`). Prints the query's rows as JSON.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [dist, flavour] = process.argv.slice(2);
if (!dist) {
  console.error("usage: node sqljs.mjs DIST_DIR [debug]");
  process.exit(2);
}
const name = flavour === "debug" ? "sql-wasm-debug" : "sql-wasm";
const require = createRequire(import.meta.url);
const initSqlJs = require(resolve(join(dist, `${name}.js`)));
const SQL = await initSqlJs({ locateFile: (f) => resolve(join(dist, f)) });
const db = new SQL.Database();
db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)");
const insert = db.prepare("INSERT INTO t (name, payload) VALUES (?, randomblob(?))");
for (let i = 0; i < 3000; i++) insert.run([`row ${i}`, 8000 + (i % 50)]);
insert.free();
db.run("CREATE INDEX t_name ON t (name)");
const rows = db.exec(
  "SELECT count(*), sum(length(payload)), min(name), max(name), length(randomblob(40000000)) FROM t WHERE id % 3 = 0",
);
console.log(JSON.stringify(rows[0].values));
db.close();
