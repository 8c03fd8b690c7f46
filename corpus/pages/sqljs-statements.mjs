// The statements corpus/pages/sqljs-worker.html sends to sql.js's Worker
// and corpus/apps/sqljs-exec.mjs runs in Node: [sql, params] pairs.
export function* statements() {
  yield ["CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)", undefined];
  yield ["BEGIN", undefined];
  for (let i = 0; i < 1000; i++) yield ["INSERT INTO t (name, n) VALUES (?, ?)", [`row ${i + 1}`, i * 7]];
  yield ["COMMIT", undefined];
  yield ["SELECT count(*), sum(n), max(name), min(name), length(group_concat(name)) FROM t WHERE n % 3 = 0", undefined];
}
