/* fixture.c - see fixture.h. */
#include "tests/unit/fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/db.h"
#include "common/schema.h"

sqlite3 *fixture_open(const fixture_unit *units, size_t n)
{
	return fixture_open_at(":memory:", units, n);
}

sqlite3 *fixture_open_at(const char *path, const fixture_unit *units, size_t n)
{
	char err[256] = "";
	sqlite3 *db = schema_open(path, DB_CREATE, err, sizeof err);
	if (!db) {
		print_error("schema_open(%s): %s\n", path, err);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const fixture_unit *u = &units[i];
		if (db_exec(db, "INSERT INTO units(id, parent, kind, name_zh, name_en, token, position) "
				"VALUES (?, ?, ?, ?, ?, ?, ?)", "tttttti", u->id, u->parent, u->kind,
				u->name_zh ? u->name_zh : u->id, u->name_en ? u->name_en : u->id, u->token,
				(int)i + 1) != SQLITE_OK) {
			print_error("unit %s: %s\n", u->id, sqlite3_errmsg(db));
			db_close(db);
			return NULL;
		}
	}
	return db;
}

void fixture_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		print_error("%s: %s\n", sql, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	assert_int_equal(rc, SQLITE_OK);
}
