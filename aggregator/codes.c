/* codes.c - issuing ballot codes (测评码) for a round.
 *
 * What a code looks like and how it is hashed is common/codes.c; spending a
 * code when a ballot comes in is the collector's (collector/writer.c). */
#include "agg.h"

#include <string.h>

#include "common/codes.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

/* The server secret made by pingyi init. */
static bool load_secret(sqlite3 *db, unsigned char *secret)
{
	char *hex = db_text(db, "SELECT value FROM meta WHERE key = 'secret'", NULL);
	bool ok = hex && code_secret_from_hex(hex, secret);
	free(hex);
	return ok;
}

/* When the round weights voter groups, codes may only be for those groups. */
static bool group_weighted(sqlite3 *db, const char *round, const char *group)
{
	char *json = db_text(db, "SELECT rules FROM rounds WHERE id = ?", "t", round);
	agg_rules rules;
	char err[256];
	bool ok = json && agg_rules_parse_json(json, &rules, err, sizeof err) == 0 &&
		agg_rules_weight(&rules, group) >= 0;
	free(json);
	return ok;
}

/* Check the round, group and scope; fill err and return false if wrong. */
static bool issuable(sqlite3 *db, const char *round, const char *group, const char *scope,
	int count, char *err, size_t errsize)
{
	char *state = db_text(db, "SELECT state FROM rounds WHERE id = ?", "t", round);
	char *mode = db_text(db, "SELECT mode FROM rounds WHERE id = ?", "t", round);
	bool ok = false;
	size_t glen = utf8_length(group);
	if (!state)
		fmt_into(err, errsize, "no round \"%s\" (see: pingyi round list)", round);
	else if (strcmp(state, "closed") == 0)
		fmt_into(err, errsize, "round \"%s\" is closed; codes can only be issued for a draft or open round", round);
	else if (strcmp(mode, "code") != 0)
		fmt_into(err, errsize, "round \"%s\" takes open ballots; create it with --codes to use ballot codes", round);
	else if (glen == 0 || glen > 32 || strpbrk(group, "\r\n\t"))
		fmt_into(err, errsize, "the voter group must be 1 to 32 characters on one line (e.g. 党员, 群众)");
	else if (count < 1 || count > 100000)
		fmt_into(err, errsize, "--count must be from 1 to 100000");
	else if (!group_weighted(db, round, group))
		fmt_into(err, errsize, "round \"%s\" weights voter groups and \"%s\" is not one of them "
			"(see its rules file's [weights])", round, group);
	else if (db_int(db, 0, "SELECT count(*) FROM units WHERE id = ?", "t", scope) == 0)
		fmt_into(err, errsize, "no unit \"%s\" (see: pingyi units list)", scope);
	else if (db_int(db, 0, "WITH RECURSIVE up(id) AS (SELECT ?1 UNION SELECT u.parent FROM units u "
			"JOIN up ON u.id = up.id WHERE u.parent IS NOT NULL) SELECT count(*) FROM up, rounds r "
			"WHERE r.id = ?2 AND (r.scope IS NULL OR up.id = r.scope)", "tt", scope, round) == 0)
		fmt_into(err, errsize, "unit \"%s\" is outside round \"%s\"'s scope", scope, round);
	else
		ok = true;
	free(state);
	free(mode);
	return ok;
}

char *agg_codes_issue(sqlite3 *db, const char *round, const char *group, const char *scope,
	int count, char *err, size_t errsize)
{
	unsigned char secret[CODE_SECRET];
	if (!load_secret(db, secret)) {
		fmt_into(err, errsize, "the database has no server secret: run pingyi init");
		return NULL;
	}
	if (db_begin(db) != SQLITE_OK) {
		fmt_into(err, errsize, "the database is busy: %s", sqlite3_errmsg(db));
		return NULL;
	}
	char *codes = NULL;
	if (!issuable(db, round, group, scope, count, err, errsize))
		goto fail;
	codes = xcalloc((size_t)count, CODE_LEN + 1);
	sqlite3_stmt *st = db_prepare(db, "INSERT INTO codes(hash, round, grp, scope) VALUES (?, ?, ?, ?)", NULL);
	for (int i = 0; i < count; i++) {
		char *code = codes + (size_t)i * (CODE_LEN + 1);
		unsigned char hash[CODE_HASH];
		int rc;
		do { /* 75 random bits: a collision is a curiosity, but never reuse one */
			code_generate(code);
			code_hash(secret, code, hash);
			db_rebind(st, "bttt", hash, sizeof hash, round, group, scope);
		} while ((rc = db_step(st)) == SQLITE_CONSTRAINT);
		if (rc != SQLITE_DONE) {
			fmt_into(err, errsize, "cannot store the codes: %s", sqlite3_errmsg(db));
			db_finalize(st);
			goto fail;
		}
	}
	db_finalize(st);
	char *body = fmt_alloc("{\"round\":%J,\"group\":%J,\"scope\":%J,\"count\":%d}", round, group, scope, count);
	int rc = agg_ledger_append(db, "codes.issued", round, body, err, errsize);
	free(body);
	if (rc != 0)
		goto fail;
	if (db_commit(db) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot save the codes: %s", sqlite3_errmsg(db));
		goto fail;
	}
	return codes;
fail:
	db_rollback(db);
	free(codes);
	return NULL;
}
