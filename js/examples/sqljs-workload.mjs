// The statements the sql.js examples run, in Node (sqljs.mjs) and in a page
// (sqljs.html): 3,000 rows with 8 KB blobs, an index, a query over a third
// of them, and one 40,000,000-byte blob that makes the heap grow. Returns
// the query's rows as JSON.
import "./fixed-env.mjs";
export function workload(SQL) {
  const db = openDatabase(SQL);
  db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)");
  const insert = db.prepare("INSERT INTO t (name, payload) VALUES (?, randomblob(?))");
  for (let i = 0; i < 3000; i++) insert.run([`row ${i}`, 8000 + (i % 50)]);
  insert.free();
  db.run("CREATE INDEX t_name ON t (name)");
  const rows = db.exec(
    "SELECT count(*), sum(length(payload)), min(name), max(name), length(randomblob(40000000)) FROM t WHERE id % 3 = 0",
  );
  db.close();
  return JSON.stringify(rows[0].values);
}

// `new SQL.Database()` with its file named by a fixed number. sql.js names
// each database's file "dbfile_" + a random 32-bit number (Math.random), and
// SQLite allocates for that name (the full path, the pager's copy) by its
// length, which is 10 digits in 77% of runs, 9 in 21% and fewer in 2%: a run
// allocated 16 bytes fewer in about one run in five (93,215,905 bytes
// instead of 93,215,921 for sqljs.mjs's release build). 0.5 gives
// 2147483647, 10 digits, as most runs had.
export function openDatabase(SQL) {
  const random = Math.random;
  Math.random = () => 0.5;
  try {
    return new SQL.Database();
  } finally {
    Math.random = random;
  }
}
