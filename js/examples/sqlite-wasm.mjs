// A few SQL statements through the official SQLite wasm build (npm
// `@sqlite.org/sqlite-wasm`, emscripten) and its own glue, as a Node app
// runs them: its glue checks each export's arity (`fn.length`) at start-up.
//   node sqlite-wasm.mjs PACKAGE_DIR
// PACKAGE_DIR is the installed package (corpus/node_modules/@sqlite.org/
// sqlite-wasm): its Node entry is the one its package.json names. Prints
// SQLite's version and the query's row as JSON.
import "./fixed-env.mjs";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg] = process.argv.slice(2);
if (!pkg) {
  console.error("usage: node sqlite-wasm.mjs PACKAGE_DIR");
  process.exit(2);
}
const entry = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).exports["."].node;
const { default: init } = await import(pathToFileURL(resolve(join(pkg, entry))).href);
const sqlite3 = await init({ print: () => {}, printErr: (m) => console.error(m) });
const db = new sqlite3.oo1.DB(":memory:", "c");
try {
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
  db.exec("BEGIN");
  const insert = db.prepare("INSERT INTO t (name, n) VALUES (?, ?)");
  for (let i = 0; i < 2000; i++) {
    insert.bind([`row ${i + 1}`, i * 7]).stepReset();
  }
  insert.finalize();
  db.exec("COMMIT");
  const rows = db.exec({
    sql: "SELECT count(*), sum(n), max(name), min(name) FROM t WHERE n % 3 = 0",
    returnValue: "resultRows",
  });
  console.log(JSON.stringify([sqlite3.version.libVersion, ...rows]));
} finally {
  db.close();
}
