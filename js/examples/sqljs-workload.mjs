// The statements the sql.js examples run, in Node (sqljs.mjs) and in a page
// (sqljs.html): 3,000 rows with 8 KB blobs, an index, a query over a third
// of them, and one 40,000,000-byte blob that makes the heap grow. Returns
// the query's rows as JSON.
export function workload(SQL) {
  const db = new SQL.Database();
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
