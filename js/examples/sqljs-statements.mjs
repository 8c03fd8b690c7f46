// SQL statements run one at a time through sql.js's `exec`: by a Node app
// on the main thread (sqljs-exec.mjs) and by sql.js's own Web Worker
// (worker.sql-wasm-debug.js, in sqljs-worker.html). 3,000 rows with 8 KB
// blobs, an index, and the query of sqljs-workload.mjs, whose
// 40,000,000-byte blob makes the heap grow; the query's rows are the same.
export const STATEMENTS = [
  "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)",
  "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 2999) INSERT INTO t (name, payload) SELECT 'row ' || i, randomblob(8000 + i % 50) FROM c",
  "CREATE INDEX t_name ON t (name)",
  "SELECT count(*), sum(length(payload)), min(name), max(name), length(randomblob(40000000)) FROM t WHERE id % 3 = 0",
];
