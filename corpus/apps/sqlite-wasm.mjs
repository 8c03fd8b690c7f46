// The official SQLite wasm build (@sqlite.org/sqlite-wasm, emscripten)
// through its own glue, which checks each export's arity (`fn.length`) at
// start-up: 2,000 rows through a prepared statement, one query.
import { printMemories } from "./memory.mjs";
import init from "@sqlite.org/sqlite-wasm";
const sqlite3 = await init({ print: () => {}, printErr: (m) => console.error(m) });
const db = new sqlite3.oo1.DB(":memory:", "c");
db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
db.exec("BEGIN");
const insert = db.prepare("INSERT INTO t (name, n) VALUES (?, ?)");
for (let i = 0; i < 2000; i++) insert.bind([`row ${i + 1}`, i * 7]).stepReset();
insert.finalize();
db.exec("COMMIT");
const rows = db.exec({
  sql: "SELECT count(*), sum(n), max(name), min(name) FROM t WHERE n % 3 = 0",
  returnValue: "resultRows",
});
console.log(JSON.stringify([sqlite3.version.libVersion, ...rows]));
db.close();
printMemories();
