// sql.js (debug build) driven only through `db.exec(sql, params)`, the
// calls its Web Worker glue (worker.sql-wasm-debug.js) makes for the
// messages of corpus/pages/sqljs-worker.html: the same statements, so the
// same allocations and growth as that page's Worker.
import { printMemories } from "./memory.mjs";
import { createRequire } from "node:module";
import { statements } from "../pages/sqljs-statements.mjs";
const initSqlJs = createRequire(import.meta.url)("sql.js/dist/sql-wasm-debug.js");
const SQL = await initSqlJs();
const db = new SQL.Database();
let last;
for (const [sql, params] of statements()) last = db.exec(sql, params, {});
db.close(); // the page's last message, `close`
console.log(JSON.stringify(last[0].values));
printMemories();
