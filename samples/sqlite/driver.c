/* driver.c: an allocation-heavy workload on SQLite, for instrumenting a large
 * C program nobody here wrote (SQLite's amalgamation, fetched from the npm
 * registry by samples/build.sh) and for benchmarks.
 *
 * Usage: sqlite-driver [ROWS]   (default 20000)
 * Creates an in-memory database, inserts ROWS rows in one transaction with a
 * prepared statement, builds an index, runs grouping, sorting and text
 * queries, updates and deletes, and prints what the queries return. Its
 * output depends only on ROWS. Temporary storage stays in memory, so any
 * ROWS works (300000 for a run that lasts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "sqlite-driver: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static int print_row(void *label, int n, char **values, char **names) {
    printf("%s:", (const char *)label);
    for (int i = 0; i < n; i++)
        printf(" %s=%s", names[i], values[i] ? values[i] : "NULL");
    printf("\n");
    return 0;
}

static void query(sqlite3 *db, const char *label, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, print_row, (void *)label, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite-driver: %s: %s\n", label, err);
        exit(1);
    }
}

int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 20000;
    sqlite3 *db;
    check(sqlite3_open(":memory:", &db), db, "open");
    /* Sorts of large tables spill to temporary files, which a WASI command
     * without a preopened directory cannot create: keep them in memory. */
    check(sqlite3_exec(db, "PRAGMA temp_store = MEMORY", 0, 0, 0), db, "temp_store");
    check(sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score REAL)", 0, 0, 0), db, "create");
    check(sqlite3_exec(db, "BEGIN", 0, 0, 0), db, "begin");
    sqlite3_stmt *ins;
    check(sqlite3_prepare_v2(db, "INSERT INTO t(grp, name, score) VALUES(?, ?, ?)", -1, &ins, 0), db, "prepare");
    unsigned seed = 12345;
    char name[64];
    for (int i = 0; i < rows; i++) {
        seed = seed * 1103515245u + 12345u;
        int len = 8 + (int)((seed >> 16) % 40);
        for (int k = 0; k < len; k++)
            name[k] = (char)('a' + (int)((seed >> (k % 16)) + (unsigned)k * 7u) % 26);
        name[len] = 0;
        sqlite3_bind_int(ins, 1, (int)((seed >> 8) % 97));
        sqlite3_bind_text(ins, 2, name, len, SQLITE_TRANSIENT);
        sqlite3_bind_double(ins, 3, (double)(seed % 10000) / 100.0);
        check(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    check(sqlite3_exec(db, "CREATE INDEX t_name ON t(name)", 0, 0, 0), db, "index");
    query(db, "count", "SELECT count(*) AS n, count(DISTINCT grp) AS groups FROM t");
    query(db, "top", "SELECT grp, count(*) AS n, round(avg(score), 2) AS avg FROM t GROUP BY grp ORDER BY n DESC, grp LIMIT 3");
    query(db, "first", "SELECT name FROM t ORDER BY name LIMIT 2");
    query(db, "like", "SELECT count(*) AS n FROM t WHERE name LIKE '%abc%'");
    check(sqlite3_exec(db, "UPDATE t SET name = upper(name) WHERE grp % 3 = 0", 0, 0, 0), db, "update");
    check(sqlite3_exec(db, "DELETE FROM t WHERE score < 20", 0, 0, 0), db, "delete");
    query(db, "after", "SELECT count(*) AS n, max(length(name)) AS longest FROM t");
    check(sqlite3_close(db), db, "close");
    return 0;
}
