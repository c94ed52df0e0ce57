/* db.h - a thin SQLite wrapper: bound parameters only, one way to open.
 *
 * SQL text is always a literal; values go in through a bind spec, one
 * character per parameter:
 *   't' const char *  (NULL binds NULL)     'i' int
 *   'I' int64_t                             'd' double
 *   'b' const void *, size_t  (a blob)      'n' NULL (no argument)
 * A statement that fails to prepare is a bug in our SQL, so it aborts with
 * the message; failures at step time (busy, constraint, disk full) are
 * returned to the caller. The schema and its migrations are in schema.h. */
#ifndef PINGYI_DB_H
#define PINGYI_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { DB_READWRITE = 0, DB_CREATE = 1, DB_READONLY = 2 };

/* Open path and set WAL, foreign keys, secure_delete, synchronous=FULL and
 * a busy timeout. Returns NULL and fills err when the file cannot be opened
 * (or, without DB_CREATE, does not exist). Close with db_close. */
sqlite3 *db_open(const char *path, int mode, char *err, size_t errsize);
void db_close(sqlite3 *db);

/* Prepare sql and bind the arguments described by spec. Never NULL. */
sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql, const char *spec, ...);
/* Reset a prepared statement and bind new arguments, to run it again. */
void db_rebind(sqlite3_stmt *st, const char *spec, ...);
/* SQLITE_ROW, SQLITE_DONE, or an error code. */
int db_step(sqlite3_stmt *st);
void db_finalize(sqlite3_stmt *st);

/* Run sql to completion; SQLITE_OK or the error code of the failing step. */
int db_exec(sqlite3 *db, const char *sql, const char *spec, ...);
/* First column of the first row as an integer, or dflt when there is none. */
int64_t db_int(sqlite3 *db, int64_t dflt, const char *sql, const char *spec, ...);
/* First column of the first row as a new string the caller frees, or NULL. */
char *db_text(sqlite3 *db, const char *sql, const char *spec, ...);

/* Column i of the current row as text; "" for NULL. Owned by the statement. */
const char *db_col_text(sqlite3_stmt *st, int i);

/* BEGIN IMMEDIATE (take the write lock now, waiting up to the busy timeout),
 * COMMIT and ROLLBACK. Return SQLITE_OK or an error code. */
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
int db_rollback(sqlite3 *db);

#endif
