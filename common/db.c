/* db.c - see db.h. */
#include "db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fmt.h"
#include "mem.h"

static const char *const setup_sql =
	"PRAGMA foreign_keys=ON;"
	"PRAGMA secure_delete=ON;"
	"PRAGMA synchronous=FULL;";

sqlite3 *db_open(const char *path, int mode, char *err, size_t errsize)
{
	if (!(mode & DB_CREATE) && access(path, F_OK) != 0) {
		fmt_into(err, errsize, "no database at %s (create one with: pingyi init --db %s)", path, path);
		return NULL;
	}
	int flags = mode & DB_READONLY ? SQLITE_OPEN_READONLY
		: SQLITE_OPEN_READWRITE | (mode & DB_CREATE ? SQLITE_OPEN_CREATE : 0);
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 5000);
	if (rc == SQLITE_OK && !(mode & DB_READONLY))
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, setup_sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		fmt_into(err, errsize, "cannot open database %s: %s", path,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

void db_close(sqlite3 *db)
{
	sqlite3_close(db);
}

static void bind_all(sqlite3_stmt *st, const char *spec, va_list ap)
{
	for (int i = 0; spec && spec[i]; i++) {
		int col = i + 1, rc;
		switch (spec[i]) {
		case 't': rc = sqlite3_bind_text(st, col, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
		case 'i': rc = sqlite3_bind_int(st, col, va_arg(ap, int)); break;
		case 'I': rc = sqlite3_bind_int64(st, col, va_arg(ap, int64_t)); break;
		case 'd': rc = sqlite3_bind_double(st, col, va_arg(ap, double)); break;
		case 'n': rc = sqlite3_bind_null(st, col); break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob(st, col, p, (int)n, SQLITE_TRANSIENT);
			break;
		}
		default:
			fprintf(stderr, "fatal: bad bind spec \"%s\"\n", spec);
			abort();
		}
		if (rc != SQLITE_OK) {
			fprintf(stderr, "fatal: binding parameter %d of \"%s\": %s\n", col,
				sqlite3_sql(st), sqlite3_errstr(rc));
			abort();
		}
	}
}

static sqlite3_stmt *vprepare(sqlite3 *db, const char *sql, const char *spec, va_list ap)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fatal: SQL error in \"%s\": %s\n", sql, sqlite3_errmsg(db));
		abort();
	}
	bind_all(st, spec, ap);
	return st;
}

sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql, const char *spec, ...)
{
	va_list ap;
	va_start(ap, spec);
	sqlite3_stmt *st = vprepare(db, sql, spec, ap);
	va_end(ap);
	return st;
}

void db_rebind(sqlite3_stmt *st, const char *spec, ...)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	va_list ap;
	va_start(ap, spec);
	bind_all(st, spec, ap);
	va_end(ap);
}

int db_step(sqlite3_stmt *st) { return sqlite3_step(st); }
void db_finalize(sqlite3_stmt *st) { sqlite3_finalize(st); }

int db_exec(sqlite3 *db, const char *sql, const char *spec, ...)
{
	va_list ap;
	va_start(ap, spec);
	sqlite3_stmt *st = vprepare(db, sql, spec, ap);
	va_end(ap);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int64_t db_int(sqlite3 *db, int64_t dflt, const char *sql, const char *spec, ...)
{
	va_list ap;
	va_start(ap, spec);
	sqlite3_stmt *st = vprepare(db, sql, spec, ap);
	va_end(ap);
	int64_t v = dflt;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

char *db_text(sqlite3 *db, const char *sql, const char *spec, ...)
{
	va_list ap;
	va_start(ap, spec);
	sqlite3_stmt *st = vprepare(db, sql, spec, ap);
	va_end(ap);
	char *v = NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

const char *db_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? (const char *)s : "";
}

int db_begin(sqlite3 *db) { return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL); }
int db_commit(sqlite3 *db) { return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL); }
int db_rollback(sqlite3 *db) { return sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); }
