// sql.js (SQLite by emscripten) through its own glue: 3,000 rows inserted,
// a query over a third of them. `node sqljs.mjs [debug]`: the release build
// (minified exports, no names) or the debug one.
import { printMemories } from "./memory.mjs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const debug = process.argv[2] === "debug";
const initSqlJs = require(debug ? "sql.js/dist/sql-wasm-debug.js" : "sql.js/dist/sql-wasm.js");
const SQL = await initSqlJs();
const db = new SQL.Database();
db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
db.run("BEGIN");
const insert = db.prepare("INSERT INTO t (name, n) VALUES (?, ?)");
for (let i = 0; i < 3000; i++) insert.run([`row ${i + 1}`, i * 7]);
insert.free();
db.run("COMMIT");
const rows = db.exec("SELECT count(*), sum(n), max(name), min(name) FROM t WHERE n % 3 = 0");
console.log(JSON.stringify(rows[0].values));
db.close();
printMemories();
