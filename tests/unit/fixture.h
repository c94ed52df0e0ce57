/* fixture.h - what the unit tests that need a database share.
 *
 * fixture_open makes an in-memory database at this build's schema and fills
 * the units table; the tests then work on it through the public APIs. */
#ifndef PINGYI_TEST_FIXTURE_H
#define PINGYI_TEST_FIXTURE_H

#include <sqlite3.h>
#include <stddef.h>

/* One unit: id, parent (NULL at the top), kind, name_zh, name_en, token.
 * A NULL name takes the id. */
typedef struct fixture_unit {
	const char *id, *parent, *kind, *name_zh, *name_en, *token;
} fixture_unit;

/* A new in-memory database holding units[0..n) in that order, or NULL
 * (with a cmocka error printed). Close it with db_close. */
sqlite3 *fixture_open(const fixture_unit *units, size_t n);
/* The same in a new database file at path. */
sqlite3 *fixture_open_at(const char *path, const fixture_unit *units, size_t n);
/* Run sql and fail the current test unless it succeeds. */
void fixture_exec(sqlite3 *db, const char *sql);

#endif
