// sql.js (sqljs.mjs's statements, with its own emscripten glue), then it
// waits to be killed, as a server would:
//   node sqljs-until-killed.mjs DIST_DIR [debug] [own-sigint|ignore-sigterm]
// Prints the query's rows, then, once back in the event loop, `ready PID`,
// and waits until a signal ends it (the tests of a killed app's session).
// With `own-sigint` it listens for SIGINT itself: it closes the database,
// prints `stopped` and exits 5. With `ignore-sigterm` it listens for SIGTERM
// and carries on, printing `SIGTERM ignored`.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { openDatabase, workload } from "./sqljs-workload.mjs";

const [dist, flavour, own] = process.argv.slice(2);
if (!dist) {
  console.error("usage: node sqljs-until-killed.mjs DIST_DIR [debug]");
  process.exit(2);
}
const name = flavour === "debug" ? "sql-wasm-debug" : "sql-wasm";
const require = createRequire(import.meta.url);
const initSqlJs = require(resolve(join(dist, `${name}.js`)));
const SQL = await initSqlJs({ locateFile: (f) => resolve(join(dist, f)) });
console.log(workload(SQL));
if (own === "own-sigint") {
  const db = openDatabase(SQL);
  db.run("CREATE TABLE t (a)");
  process.on("SIGINT", () => {
    db.close();
    console.log("stopped");
    process.exit(5);
  });
}
if (own === "ignore-sigterm") process.on("SIGTERM", () => console.log("SIGTERM ignored"));
await new Promise((r) => setImmediate(r));
console.log(`ready ${process.pid}`);
setInterval(() => {}, 1 << 30);
