/* schema.h - the database layout and its migrations.
 *
 * The layout is versioned with PRAGMA user_version: each migration moves the
 * database up one version inside a transaction, so a database made by an
 * older build upgrades in place when a newer build opens it, and a database
 * from a newer build is refused rather than misread. The tables and why they
 * look the way they do are documented next to the SQL in schema.c. */
#ifndef PINGYI_SCHEMA_H
#define PINGYI_SCHEMA_H

#include <sqlite3.h>
#include <stddef.h>

/* The version this build writes. */
int schema_version(void);

/* Bring db up to schema_version(). Returns 0, or -1 with err filled (the
 * database is then left at the version it had). */
int schema_migrate(sqlite3 *db, char *err, size_t errsize);

/* db_open followed by schema_migrate (skipped for DB_READONLY, which only
 * checks the version). Returns NULL with err filled on failure. */
sqlite3 *schema_open(const char *path, int mode, char *err, size_t errsize);

#endif
