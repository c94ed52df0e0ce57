/* round.c - a round's life: draft, open, closed.
 *
 * Opening freezes which units the round rates (round_units) and records the
 * rules and the form's hash in the ledger; closing records every unit's final
 * figures and grade. Each transition is one transaction together with its
 * ledger entry, so the ledger and the rounds table never disagree. */
#include "agg.h"

#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"

static bool valid_round_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64 || !(islower((unsigned char)id[0]) || isdigit((unsigned char)id[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)id[i]) && !isdigit((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
			return false;
	return true;
}

int agg_round_create(sqlite3 *db, const agg_round_spec *spec, char *err, size_t errsize)
{
	if (!valid_round_id(spec->id)) {
		fmt_into(err, errsize, "bad round id \"%s\": use 1-64 lowercase letters, digits, - and _, "
			"starting with a letter or digit (e.g. 2026h2-branch)", spec->id);
		return -1;
	}
	if (!spec->title_zh || !*spec->title_zh || !spec->title_en || !*spec->title_en) {
		fmt_into(err, errsize, "a round needs a Chinese and an English title (--title-zh, --title-en)");
		return -1;
	}
	if (spec->scope && db_int(db, 0, "SELECT count(*) FROM units WHERE id = ?", "t", spec->scope) == 0) {
		fmt_into(err, errsize, "no unit \"%s\" to use as the scope (see: pingyi units list)", spec->scope);
		return -1;
	}
	char *src = NULL;
	form *f = form_load(spec->form_path, &src, err, errsize);
	if (!f)
		return -1;
	agg_rules rules;
	if (spec->rules_path ? agg_rules_load(spec->rules_path, &rules, err, errsize) != 0 : (agg_rules_default(&rules), false)) {
		form_free(f);
		free(src);
		return -1;
	}
	if (!spec->codes_required && agg_rules_weight(&rules, "群众") < 0) {
		fmt_into(err, errsize, "%s weights voter groups but not 群众, the group of poster ballots: "
			"add 群众 to [weights], or create the round with --codes", spec->rules_path);
		form_free(f);
		free(src);
		return -1;
	}
	char *rules_json = agg_rules_json(&rules);
	int rc = db_exec(db, "INSERT INTO rounds(id, series, title_zh, title_en, scope, form_id, "
		"form_src, rules, closes_at, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, nullif(?, 0), ?)", "ttttttttIt",
		spec->id, spec->series ? spec->series : "", spec->title_zh, spec->title_en, spec->scope,
		f->id, src, rules_json, spec->closes_at, spec->codes_required ? "code" : "open");
	if (rc == SQLITE_CONSTRAINT)
		fmt_into(err, errsize, "a round \"%s\" already exists", spec->id);
	else if (rc != SQLITE_OK)
		fmt_into(err, errsize, "cannot create the round: %s", sqlite3_errmsg(db));
	form_free(f);
	free(src);
	free(rules_json);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The round's state, or NULL (with err) when there is no such round. */
static char *round_state(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	char *state = db_text(db, "SELECT state FROM rounds WHERE id = ?", "t", round);
	if (!state)
		fmt_into(err, errsize, "no round \"%s\" (see: pingyi round list)", round);
	return state;
}

/* Units of the round's scope whose kind its form rates, into round_units.
 * Returns how many, or -1 with err when one is already in another open round. */
static int fix_units(sqlite3 *db, const char *round, const form *f, char *err, size_t errsize)
{
	sqlite3_stmt *st = db_prepare(db,
		"WITH RECURSIVE scope(id) AS ("
		"  SELECT id FROM units WHERE id = (SELECT scope FROM rounds WHERE id = ?1)"
		"    OR (SELECT scope FROM rounds WHERE id = ?1) IS NULL"
		"  UNION SELECT u.id FROM units u JOIN scope s ON u.parent = s.id)"
		" SELECT u.id, u.kind, (SELECT ru.round FROM round_units ru JOIN rounds r ON r.id = ru.round"
		"   WHERE ru.unit = u.id AND r.state = 'open') FROM units u JOIN scope s ON s.id = u.id",
		"t", round);
	int n = 0;
	while (db_step(st) == SQLITE_ROW) {
		if (!form_rates_kind(f, db_col_text(st, 1)))
			continue;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			fmt_into(err, errsize, "unit \"%s\" is already being rated in open round \"%s\"; "
				"close that round first or narrow this round's scope",
				db_col_text(st, 0), db_col_text(st, 2));
			db_finalize(st);
			return -1;
		}
		if (db_exec(db, "INSERT INTO round_units(round, unit) VALUES (?, ?)", "tt",
				round, db_col_text(st, 0)) != SQLITE_OK) {
			fmt_into(err, errsize, "cannot record the round's units: %s", sqlite3_errmsg(db));
			db_finalize(st);
			return -1;
		}
		n++;
	}
	db_finalize(st);
	if (n == 0)
		fmt_into(err, errsize, "the round's scope has no unit of a kind its form rates");
	return n > 0 ? n : -1;
}

static char *opened_body(sqlite3 *db, const char *round, int n_units)
{
	buf b;
	buf_init(&b, 1 << 20);
	sqlite3_stmt *st = db_prepare(db, "SELECT series, title_zh, title_en, scope, form_id, form_src, "
		"rules, coalesce(closes_at, 0), mode FROM rounds WHERE id = ?", "t", round);
	if (db_step(st) == SQLITE_ROW) {
		unsigned char h[crypto_hash_sha256_BYTES];
		char hex[2 * sizeof h + 1];
		const char *src = db_col_text(st, 5);
		crypto_hash_sha256(h, (const unsigned char *)src, strlen(src));
		sodium_bin2hex(hex, sizeof hex, h, sizeof h);
		buf_fmt(&b, "{\"round\":%J,\"series\":%J,\"title_zh\":%J,\"title_en\":%J,\"scope\":%J,"
			"\"form\":%J,\"form_sha256\":%J,\"units\":%d,\"closes_at\":%lld,\"mode\":%J,\"rules\":%s}",
			round, db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_text(st, 3),
			db_col_text(st, 4), hex, n_units, (long long)sqlite3_column_int64(st, 7),
			db_col_text(st, 8), db_col_text(st, 6)); /* rules: JSON we wrote ourselves */
	}
	db_finalize(st);
	return buf_take(&b);
}

int agg_round_open(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	if (db_begin(db) != SQLITE_OK) {
		fmt_into(err, errsize, "the database is busy: %s", sqlite3_errmsg(db));
		return -1;
	}
	int rc = -1;
	form *f = NULL;
	char *state = round_state(db, round, err, errsize);
	char *src = state ? db_text(db, "SELECT form_src FROM rounds WHERE id = ?", "t", round) : NULL;
	if (state && strcmp(state, "draft") != 0)
		fmt_into(err, errsize, "round \"%s\" is %s; only a draft round can be opened", round, state);
	else if (src && (f = form_parse(src, round, err, errsize)) != NULL) {
		int n = fix_units(db, round, f, err, errsize);
		char *body = n > 0 ? opened_body(db, round, n) : NULL;
		if (n > 0 && db_exec(db, "UPDATE rounds SET state = 'open', opened_at = unixepoch() "
				"WHERE id = ?", "t", round) == SQLITE_OK &&
			agg_ledger_append(db, "round.opened", round, body, err, errsize) == 0)
			rc = 0;
		free(body);
	}
	if (rc == 0 && db_commit(db) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot save: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	if (rc != 0)
		db_rollback(db);
	if (f)
		form_free(f);
	free(src);
	free(state);
	return rc;
}

/* Close an open round inside the caller's transaction. */
static int close_locked(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	char *state = round_state(db, round, err, errsize);
	if (!state)
		return -1;
	bool open = strcmp(state, "open") == 0;
	if (!open)
		fmt_into(err, errsize, "round \"%s\" is %s; only an open round can be closed", round, state);
	free(state);
	if (!open)
		return -1;
	if (db_exec(db, "UPDATE rounds SET state = 'closed', closed_at = unixepoch() WHERE id = ?",
			"t", round) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot close the round: %s", sqlite3_errmsg(db));
		return -1;
	}
	agg_tally t;
	if (agg_tally_load(db, round, &t, err, errsize) != 0)
		return -1;
	buf body;
	buf_init(&body, 64 << 20);
	agg_tally_json(&t, &body);
	agg_tally_free(&t);
	int rc = body.overflow ? -1 : agg_ledger_append(db, "round.closed", round, buf_str(&body), err, errsize);
	if (body.overflow)
		fmt_into(err, errsize, "the round's tally is too large for the ledger");
	buf_free(&body);
	return rc;
}

int agg_round_close(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	err[0] = '\0';
	if (db_begin(db) != SQLITE_OK) {
		fmt_into(err, errsize, "the database is busy: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (close_locked(db, round, err, errsize) != 0 || db_commit(db) != SQLITE_OK) {
		if (!*err)
			fmt_into(err, errsize, "cannot save: %s", sqlite3_errmsg(db));
		db_rollback(db);
		return -1;
	}
	return 0;
}

int agg_close_due(sqlite3 *db, int64_t now, char *err, size_t errsize)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT id FROM rounds WHERE state = 'open' "
		"AND closes_at IS NOT NULL AND closes_at <= ? ORDER BY closes_at", "I", now);
	char **due = NULL;
	size_t n = 0;
	while (db_step(st) == SQLITE_ROW) {
		due = xrealloc(due, (n + 1) * sizeof *due);
		due[n++] = xstrdup(db_col_text(st, 0));
	}
	db_finalize(st);
	int closed = 0;
	for (size_t i = 0; i < n; i++) {
		char why[512] = "";
		if (agg_round_close(db, due[i], why, sizeof why) == 0)
			closed++;
		else
			fmt_into(err, errsize, "closing round %s: %s", due[i], why);
		free(due[i]);
	}
	free(due);
	return closed;
}
