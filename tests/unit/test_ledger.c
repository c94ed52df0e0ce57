/* test_ledger.c - the hash-chained ledger (aggregator/ledger.c) and the
 * round transitions that write to it (aggregator/round.c).
 *
 * The database's triggers are the first wall: UPDATE and DELETE must be
 * refused while they exist. To test the second wall, the chain, a test drops
 * the triggers (as someone editing the file would) and tampers with one
 * column or row at a time; agg_ledger_verify must then name the first bad
 * entry. The hash is recomputed here from the documented encoding, so a
 * change of format is noticed too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "aggregator/agg.h"
#include "common/buf.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/schema.h"
#include "tests/unit/fixture.h"

static sqlite3 *db;

static int exec_sql(const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	sqlite3_free(msg);
	return rc;
}

static void exec_ok(const char *sql) { fixture_exec(db, sql); }

static int64_t count_of(const char *sql)
{
	return db_int(db, -1, sql, NULL);
}

static int setup(void **state)
{
	(void)state;
	static const fixture_unit units[] = {
		{ "party", NULL, "committee", NULL, NULL, "tkparty0" },
		{ "gb1", "party", "general_branch", NULL, NULL, "tkgb1000" },
		{ "b11", "gb1", "branch", NULL, NULL, "tkb11000" },
		{ "gb2", "party", "general_branch", NULL, NULL, "tkgb2000" },
		{ "b21", "gb2", "branch", NULL, NULL, "tkb21000" },
	};
	db = fixture_open(units, sizeof units / sizeof units[0]);
	return db ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	db_close(db);
	db = NULL;
	return 0;
}

/* ---- helpers ---- */

static void append(const char *kind, const char *round, const char *body)
{
	char err[256] = "";
	int rc = agg_ledger_append(db, kind, round, body, err, sizeof err);
	if (rc != 0)
		print_error("agg_ledger_append: %s\n", err);
	assert_int_equal(rc, 0);
}

/* Five entries in one transaction; the first without a round. */
static void five_entries(void)
{
	assert_int_equal(db_begin(db), SQLITE_OK);
	append("test.first", NULL, "{\"n\":1}");
	append("test.entry", "r1", "{\"n\":2}");
	append("test.entry", "r1", "{\"n\":3,\"text\":\"中文\"}");
	append("test.entry", "r1", "{\"n\":4}");
	append("test.last", "r1", "{\"n\":5}");
	assert_int_equal(db_commit(db), SQLITE_OK);
}

/* agg_ledger_verify's result; *report receives its text (caller frees). */
static int64_t verify(char **report)
{
	buf b;
	buf_init(&b, 1 << 16);
	int64_t rc = agg_ledger_verify(db, &b);
	*report = buf_take(&b);
	return rc;
}

/* Intact: 0, and a report that starts "ledger intact: N entries" (it may
 * go on to say more, on the same line). */
static void expect_intact(int64_t n)
{
	char *report;
	int64_t rc = verify(&report);
	char *want = fmt_alloc("ledger intact: %lld entries", (long long)n);
	size_t len = strlen(want);
	bool same = strncmp(report, want, len) == 0 && (report[len] == '\n' || report[len] == ';') &&
		strchr(report, '\n') == report + strlen(report) - 1;
	if (rc != 0 || !same)
		print_error("verify returned %lld: %s", (long long)rc, report);
	free(want);
	free(report);
	assert_int_equal(rc, 0);
	assert_true(same);
}

static void hash_field(crypto_hash_sha256_state *st, const void *p, size_t n)
{
	char len[32];
	snprintf(len, sizeof len, "%zu:", n);
	crypto_hash_sha256_update(st, (const unsigned char *)len, strlen(len));
	crypto_hash_sha256_update(st, p, n);
}

/* The entry hash as ledger.c documents it: SHA-256 over length-prefixed
 * fields "pingyi-ledger-v1", seq, at, kind, round, body, prev. */
static void entry_hash(int64_t seq, int64_t at, const char *kind, const char *round,
	const char *body, const unsigned char prev[32], unsigned char out[32])
{
	char num[32];
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	hash_field(&st, "pingyi-ledger-v1", 16);
	snprintf(num, sizeof num, "%lld", (long long)seq);
	hash_field(&st, num, strlen(num));
	snprintf(num, sizeof num, "%lld", (long long)at);
	hash_field(&st, num, strlen(num));
	hash_field(&st, kind, strlen(kind));
	hash_field(&st, round ? round : "", round ? strlen(round) : 0);
	hash_field(&st, body, strlen(body));
	hash_field(&st, prev, 32);
	crypto_hash_sha256_final(&st, out);
}

/* Recompute and store the hash of entry seq from its current columns, as
 * someone who knows the format would after editing it. */
static void rehash(int64_t seq)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT at, kind, round, body, prev FROM ledger WHERE seq = ?",
		"I", seq);
	assert_int_equal(db_step(st), SQLITE_ROW);
	unsigned char h[32];
	entry_hash(seq, sqlite3_column_int64(st, 0), db_col_text(st, 1),
		sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : db_col_text(st, 2),
		db_col_text(st, 3), sqlite3_column_blob(st, 4), h);
	db_finalize(st);
	assert_int_equal(db_exec(db, "UPDATE ledger SET hash = ? WHERE seq = ?", "bI", h, (size_t)32, seq),
		SQLITE_OK);
}

static void drop_triggers(void)
{
	exec_ok("DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete");
}

/* ---- appending ---- */

static void test_empty(void **state)
{
	(void)state;
	expect_intact(0);
}

static void test_append_and_verify(void **state)
{
	(void)state;
	int64_t before = (int64_t)time(NULL);
	five_entries();
	int64_t after = (int64_t)time(NULL);
	expect_intact(5);

	/* Each row: seq 1.., prev = the previous hash (zeros for the first),
	 * hash = the documented encoding. */
	unsigned char prev[32] = { 0 };
	sqlite3_stmt *st = db_prepare(db, "SELECT seq, at, kind, round, body, prev, hash FROM ledger "
		"ORDER BY seq", NULL);
	int64_t n = 0;
	while (db_step(st) == SQLITE_ROW) {
		n++;
		assert_int_equal(sqlite3_column_int64(st, 0), n);
		int64_t at = sqlite3_column_int64(st, 1);
		assert_true(at >= before && at <= after);
		assert_int_equal(sqlite3_column_bytes(st, 5), 32);
		assert_memory_equal(sqlite3_column_blob(st, 5), prev, 32);
		unsigned char h[32];
		const char *round = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : db_col_text(st, 3);
		entry_hash(n, at, db_col_text(st, 2), round, db_col_text(st, 4), prev, h);
		assert_int_equal(sqlite3_column_bytes(st, 6), 32);
		assert_memory_equal(sqlite3_column_blob(st, 6), h, 32);
		memcpy(prev, h, 32);
		if (n == 1)
			assert_int_equal(sqlite3_column_type(st, 3), SQLITE_NULL);
	}
	db_finalize(st);
	assert_int_equal(n, 5);
	assert_int_equal(count_of("SELECT count(*) FROM ledger WHERE kind = 'test.entry' AND round = 'r1'"), 3);
}

/* An entry commits or rolls back with the caller's transaction. */
static void test_append_in_transaction(void **state)
{
	(void)state;
	assert_int_equal(db_begin(db), SQLITE_OK);
	append("test.rolled_back", NULL, "{}");
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 1);
	assert_int_equal(db_rollback(db), SQLITE_OK);
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 0);
	expect_intact(0);
	assert_int_equal(db_begin(db), SQLITE_OK);
	append("test.kept", NULL, "{}");
	assert_int_equal(db_commit(db), SQLITE_OK);
	assert_int_equal(count_of("SELECT max(seq) FROM ledger"), 1);
	expect_intact(1);
}

/* ---- the first wall: triggers ---- */

static void test_triggers_refuse(void **state)
{
	(void)state;
	five_entries();
	char *before = db_text(db, "SELECT group_concat(seq || kind || body || hex(hash), ';') FROM ledger", NULL);
	static const char *const attempts[] = {
		"UPDATE ledger SET body = '{}' WHERE seq = 3",
		"UPDATE ledger SET seq = 9 WHERE seq = 5",
		"UPDATE ledger SET hash = prev",
		"DELETE FROM ledger WHERE seq = 5",
		"DELETE FROM ledger",
		"INSERT INTO ledger(seq, at, kind, body, prev, hash) VALUES (2, 0, 'x', '{}', x'00', x'00') "
			"ON CONFLICT(seq) DO UPDATE SET body = 'forged'",
	};
	for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
		int rc = exec_sql(attempts[i]);
		if (rc == SQLITE_OK)
			print_error("allowed: %s\n", attempts[i]);
		assert_int_equal(rc, SQLITE_CONSTRAINT);
		assert_non_null(strstr(sqlite3_errmsg(db), "append-only"));
	}
	char *after = db_text(db, "SELECT group_concat(seq || kind || body || hex(hash), ';') FROM ledger", NULL);
	bool same = strcmp(before, after) == 0;
	free(before);
	free(after);
	assert_true(same);
	expect_intact(5);
}

/* INSERT OR REPLACE deletes the old row without firing DELETE triggers
 * (SQLite fires them on REPLACE only with recursive_triggers on), so it
 * rewrites an entry in place past both triggers. */
static void test_replace_refused(void **state)
{
	(void)state;
	five_entries();
	int rc = exec_sql("INSERT OR REPLACE INTO ledger(seq, at, kind, round, body, prev, hash) "
		"SELECT seq, at, kind, round, '{\"n\":\"forged\"}', prev, hash FROM ledger WHERE seq = 2");
	char *body = db_text(db, "SELECT body FROM ledger WHERE seq = 2", NULL);
	bool kept = strcmp(body, "{\"n\":2}") == 0;
	if (!kept)
		print_error("INSERT OR REPLACE rewrote entry 2 to %s\n", body);
	free(body);
	assert_int_not_equal(rc, SQLITE_OK);
	assert_true(kept);
}

/* ---- the second wall: the chain ---- */

static void test_tamper(void **state)
{
	(void)state;
	static const struct { const char *sql; int64_t bad; const char *says; } cases[] = {
		{ "UPDATE ledger SET body = '{\"n\":33}' WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET body = body || ' ' WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET kind = 'test.other' WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET at = at + 1 WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET round = 'r2' WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET round = NULL WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET round = 'r1' WHERE seq = 1", 1, "entry 1 was altered" },
		{ "UPDATE ledger SET prev = randomblob(32) WHERE seq = 3", 3, "entry 3" },
		{ "UPDATE ledger SET prev = zeroblob(31) WHERE seq = 3", 3, "entry 3" },
		{ "UPDATE ledger SET prev = randomblob(32) WHERE seq = 1", 1, "entry 1" },
		{ "UPDATE ledger SET hash = randomblob(32) WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET hash = x'00' WHERE seq = 3", 3, "entry 3 was altered" },
		{ "UPDATE ledger SET hash = randomblob(32) WHERE seq = 5", 5, "entry 5 was altered" },
		{ "UPDATE ledger SET body = '{}' WHERE seq = 1", 1, "entry 1 was altered" },
		{ "UPDATE ledger SET body = '{}' WHERE seq = 5", 5, "entry 5 was altered" },
		{ "UPDATE ledger SET body = '{}' WHERE seq IN (2, 4)", 2, "entry 2 was altered" },
		{ "DELETE FROM ledger WHERE seq = 3", 3, "entry 3 is missing" },
		{ "DELETE FROM ledger WHERE seq = 1", 1, "entry 1 is missing" },
		{ "DELETE FROM ledger WHERE seq IN (1, 2)", 1, "entry 1 is missing" },
		{ "UPDATE ledger SET seq = -2 WHERE seq = 2; UPDATE ledger SET seq = 2 WHERE seq = 4;"
			"UPDATE ledger SET seq = 4 WHERE seq = -2", 2, "entry 2" },
		{ "UPDATE ledger SET seq = -4 WHERE seq = 4; UPDATE ledger SET seq = 4 WHERE seq = 5;"
			"UPDATE ledger SET seq = 5 WHERE seq = -4", 4, "entry 4" },
		{ "UPDATE ledger SET seq = seq + 10", 1, "entry 1 is missing" },
		/* Swapping two rows' contents, hashes and all. */
		{ "CREATE TEMP TABLE t AS SELECT * FROM ledger WHERE seq IN (2, 3);"
			"UPDATE ledger SET at = (SELECT at FROM t WHERE seq = 3), body = (SELECT body FROM t WHERE seq = 3),"
			" prev = (SELECT prev FROM t WHERE seq = 3), hash = (SELECT hash FROM t WHERE seq = 3) WHERE seq = 2;"
			"UPDATE ledger SET at = (SELECT at FROM t WHERE seq = 2), body = (SELECT body FROM t WHERE seq = 2),"
			" prev = (SELECT prev FROM t WHERE seq = 2), hash = (SELECT hash FROM t WHERE seq = 2) WHERE seq = 3;"
			"DROP TABLE t", 2, "entry 2" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		teardown(NULL); /* a fresh database for each case */
		assert_int_equal(setup(NULL), 0);
		five_entries();
		expect_intact(5);
		drop_triggers();
		exec_ok(cases[i].sql);
		char *report;
		int64_t bad = verify(&report);
		bool says = strstr(report, cases[i].says) != NULL;
		if (bad != cases[i].bad || !says)
			print_error("%s\n  -> %lld: %s", cases[i].sql, (long long)bad, report);
		free(report);
		assert_int_equal(bad, cases[i].bad);
		assert_true(says);
	}
}

/* Someone who knows the format can re-hash an edited entry; the next entry
 * no longer follows it. (Editing the newest entry this way can only be
 * caught against a head hash kept elsewhere: ledger.c says so.) */
static void test_tamper_rehashed(void **state)
{
	(void)state;
	five_entries();
	drop_triggers();
	exec_ok("UPDATE ledger SET body = '{\"n\":33}' WHERE seq = 3");
	rehash(3);
	char *report;
	int64_t bad = verify(&report);
	bool says = strstr(report, "entry 4 does not follow entry 3") != NULL;
	if (bad != 4 || !says)
		print_error("%lld: %s", (long long)bad, report);
	free(report);
	assert_int_equal(bad, 4);
	assert_true(says);
}

/* The hash must cover every byte of a column. SQLite text may hold a NUL;
 * bytes after it are outside a strlen()-based hash, so an edit there passes
 * verification unseen. */
static void test_tamper_after_nul(void **state)
{
	(void)state;
	five_entries();
	drop_triggers();
	exec_ok("UPDATE ledger SET body = body || char(0) || ',\"grade\":\"先进\"' WHERE seq = 3");
	assert_int_equal(count_of("SELECT length(CAST(body AS BLOB)) > 20 FROM ledger WHERE seq = 3"), 1);
	char *report;
	int64_t bad = verify(&report);
	if (bad != 3)
		print_error("an edit after a NUL in entry 3's body: verify says %s", report);
	free(report);
	assert_int_equal(bad, 3);
}

/* ---- rounds write to the ledger ---- */

static int create_round(const char *id, const char *scope, int64_t closes_at)
{
	char err[512] = "";
	/* Each round in a series of its own: trends are test_tally.c's business. */
	agg_round_spec spec = { .id = id, .series = id, .title_zh = "测评", .title_en = "Appraisal",
		.scope = scope, .form_path = "forms/branch.form", .closes_at = closes_at };
	int rc = agg_round_create(db, &spec, err, sizeof err);
	if (rc != 0)
		print_error("agg_round_create: %s\n", err);
	return rc;
}

static char *state_of(const char *round)
{
	return db_text(db, "SELECT state FROM rounds WHERE id = ?", "t", round);
}

static void expect_state(const char *round, const char *want)
{
	char *s = state_of(round);
	bool same = s && strcmp(s, want) == 0;
	if (!same)
		print_error("round %s is %s, want %s\n", round, s ? s : "(none)", want);
	free(s);
	assert_true(same);
}

/* The body of ledger entry seq, parsed. */
static json_t *entry_body(int64_t seq, const char *kind, const char *round)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT kind, round, body FROM ledger WHERE seq = ?", "I", seq);
	assert_int_equal(db_step(st), SQLITE_ROW);
	bool ok = strcmp(db_col_text(st, 0), kind) == 0 && strcmp(db_col_text(st, 1), round) == 0;
	json_error_t je;
	json_t *body = json_loads(db_col_text(st, 2), JSON_REJECT_DUPLICATES, &je);
	if (!ok || !body)
		print_error("entry %lld: %s %s %s (%s)\n", (long long)seq, db_col_text(st, 0),
			db_col_text(st, 1), db_col_text(st, 2), je.text);
	db_finalize(st);
	if (!ok)
		json_decref(body);
	assert_true(ok);
	assert_non_null(body);
	return body;
}

/* n ballots with these answers, and their counters, as the collector
 * writes them. */
static void cast_ballots(const char *round, const char *unit, int n, const char *answers)
{
	json_t *a = json_loads(answers, 0, NULL);
	const char *q;
	json_t *v;
	for (int i = 0; i < n; i++) {
		unsigned char id[16];
		randombytes_buf(id, sizeof id);
		assert_int_equal(db_exec(db, "INSERT INTO ballot_store(id, round, unit, grp, answers) "
			"VALUES (?, ?, ?, '群众', ?)", "bttt", id, sizeof id, round, unit, answers), SQLITE_OK);
		json_object_foreach(a, q, v)
			assert_int_equal(db_exec(db, "INSERT INTO counts VALUES (?, ?, '群众', ?, ?, 1) "
				"ON CONFLICT DO UPDATE SET n = n + 1", "tttt", round, unit, q, json_string_value(v)),
				SQLITE_OK);
		assert_int_equal(db_exec(db, "INSERT INTO ballot_counts VALUES (?, ?, '群众', 1) "
			"ON CONFLICT DO UPDATE SET n = n + 1", "tt", round, unit), SQLITE_OK);
	}
	json_decref(a);
}

static void test_round_open_close(void **state)
{
	(void)state;
	char err[512] = "";
	assert_int_equal(create_round("r1", NULL, 0), 0);
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 0); /* drafts are not recorded */
	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);
	expect_state("r1", "open");
	assert_int_equal(count_of("SELECT count(*) FROM round_units WHERE round = 'r1'"), 4);

	json_t *body = entry_body(1, "round.opened", "r1");
	assert_string_equal(json_string_value(json_object_get(body, "round")), "r1");
	assert_string_equal(json_string_value(json_object_get(body, "form")), "branch");
	assert_int_equal(json_integer_value(json_object_get(body, "units")), 4);
	assert_int_equal(strlen(json_string_value(json_object_get(body, "form_sha256"))), 64);
	/* The frozen rules are the round's rules, exactly. */
	char *rules_text = json_dumps(json_object_get(body, "rules"), JSON_COMPACT | JSON_PRESERVE_ORDER);
	agg_rules rules, dflt;
	int rc = agg_rules_parse_json(rules_text, &rules, err, sizeof err);
	free(rules_text);
	json_decref(body);
	assert_int_equal(rc, 0);
	agg_rules_default(&dflt);
	assert_memory_equal(&rules.veto, &dflt.veto, sizeof(double));
	assert_memory_equal(&rules.target, &dflt.target, sizeof(double));

	/* The form's hash is of the text the round stores. */
	char *src = db_text(db, "SELECT form_src FROM rounds WHERE id = 'r1'", NULL);
	unsigned char h[32];
	char hex[65];
	crypto_hash_sha256(h, (const unsigned char *)src, strlen(src));
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	free(src);
	body = entry_body(1, "round.opened", "r1");
	bool same_hash = strcmp(json_string_value(json_object_get(body, "form_sha256")), hex) == 0;
	json_decref(body);
	assert_true(same_hash);

	cast_ballots("r1", "b11", 6, "{\"overall\":\"s\"}");
	assert_int_equal(agg_round_close(db, "r1", err, sizeof err), 0);
	expect_state("r1", "closed");
	body = entry_body(2, "round.closed", "r1");
	assert_string_equal(json_string_value(json_object_get(body, "state")), "closed");
	json_t *units = json_object_get(body, "units");
	assert_int_equal(json_array_size(units), 5);
	json_t *b11 = json_array_get(units, 2);
	assert_string_equal(json_string_value(json_object_get(b11, "id")), "b11");
	assert_string_equal(json_string_value(json_object_get(b11, "grade")), "先进");
	json_decref(body);
	expect_intact(2);
	assert_int_equal(count_of("SELECT closed_at IS NOT NULL AND opened_at IS NOT NULL FROM rounds"), 1);
}

/* A closed round's recorded result must agree with its ballots: a ballot
 * removed afterwards is noticed, and the round.closed entry named. */
static void test_closed_round_recount(void **state)
{
	(void)state;
	char err[512] = "";
	assert_int_equal(create_round("r1", NULL, 0), 0);
	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);
	cast_ballots("r1", "b11", 6, "{\"overall\":\"s\"}");
	cast_ballots("r1", "b21", 2, "{\"overall\":\"d\"}");
	assert_int_equal(agg_round_close(db, "r1", err, sizeof err), 0);
	append("test.after", NULL, "{}");
	expect_intact(3);
	exec_ok("DELETE FROM ballot_store WHERE id = (SELECT id FROM ballot_store WHERE unit = 'b11' LIMIT 1)");
	char *report;
	int64_t bad = verify(&report);
	bool says = strstr(report, "entry 2") != NULL;
	if (bad != 2 || !says)
		print_error("%lld: %s", (long long)bad, report);
	free(report);
	assert_int_equal(bad, 2);
	assert_true(says);
}

static void expect_fail(int rc, const char *err, const char *says)
{
	if (rc == 0 || !strstr(err, says))
		print_error("rc %d, err \"%s\", want \"%s\"\n", rc, err, says);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, says));
}

static void test_round_wrong_state(void **state)
{
	(void)state;
	char err[512];
	assert_int_equal(create_round("r1", NULL, 0), 0);

	err[0] = 0;
	expect_fail(agg_round_close(db, "r1", err, sizeof err), err,
		"round \"r1\" is draft; only an open round can be closed");
	expect_state("r1", "draft");
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 0);

	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);
	err[0] = 0;
	expect_fail(agg_round_open(db, "r1", err, sizeof err), err,
		"round \"r1\" is open; only a draft round can be opened");
	expect_state("r1", "open");
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 1);
	assert_int_equal(count_of("SELECT count(*) FROM round_units"), 4);

	assert_int_equal(agg_round_close(db, "r1", err, sizeof err), 0);
	err[0] = 0;
	expect_fail(agg_round_close(db, "r1", err, sizeof err), err,
		"round \"r1\" is closed; only an open round can be closed");
	err[0] = 0;
	expect_fail(agg_round_open(db, "r1", err, sizeof err), err,
		"round \"r1\" is closed; only a draft round can be opened");
	err[0] = 0;
	expect_fail(agg_round_open(db, "nosuch", err, sizeof err), err, "no round \"nosuch\"");
	err[0] = 0;
	expect_fail(agg_round_close(db, "nosuch", err, sizeof err), err, "no round \"nosuch\"");
	expect_state("r1", "closed");
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 2);
	expect_intact(2);
	/* The failed calls left no transaction open behind them. */
	assert_int_equal(sqlite3_get_autocommit(db), 1);
}

/* A unit is rated by one open round at a time; the refused open leaves
 * nothing behind. */
static void test_round_overlap(void **state)
{
	(void)state;
	char err[512] = "";
	assert_int_equal(create_round("r1", "gb1", 0), 0);
	assert_int_equal(create_round("r2", NULL, 0), 0);
	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);
	err[0] = 0;
	expect_fail(agg_round_open(db, "r2", err, sizeof err), err, "already being rated in open round \"r1\"");
	expect_state("r2", "draft");
	assert_int_equal(count_of("SELECT count(*) FROM round_units WHERE round = 'r2'"), 0);
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), 1);
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	/* Once r1 is closed, r2 may open. */
	assert_int_equal(agg_round_close(db, "r1", err, sizeof err), 0);
	assert_int_equal(agg_round_open(db, "r2", err, sizeof err), 0);
	expect_intact(3);
}

/* The state change and its ledger entry commit together: when the entry
 * cannot be written, the round does not change either. */
static void test_round_atomic_with_ledger(void **state)
{
	(void)state;
	char err[512] = "";
	assert_int_equal(create_round("r1", NULL, 0), 0);
	exec_ok("CREATE TEMP TRIGGER no_space BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'disk full'); END");
	err[0] = 0;
	expect_fail(agg_round_open(db, "r1", err, sizeof err), err, "disk full");
	expect_state("r1", "draft");
	assert_int_equal(count_of("SELECT count(*) FROM round_units"), 0);
	exec_ok("DROP TRIGGER no_space");
	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);

	exec_ok("CREATE TEMP TRIGGER no_space BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'disk full'); END");
	err[0] = 0;
	expect_fail(agg_round_close(db, "r1", err, sizeof err), err, "disk full");
	expect_state("r1", "open");
	assert_int_equal(count_of("SELECT closed_at IS NULL FROM rounds"), 1);
	exec_ok("DROP TRIGGER no_space");
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	expect_intact(1);
}

static void test_close_due(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL);
	char err[512] = "";
	assert_int_equal(create_round("r1", "gb1", now - 60), 0);
	assert_int_equal(create_round("r2", "gb2", now + 3600), 0);
	assert_int_equal(agg_round_open(db, "r1", err, sizeof err), 0);
	assert_int_equal(agg_round_open(db, "r2", err, sizeof err), 0);
	assert_int_equal(agg_close_due(db, now, err, sizeof err), 1);
	expect_state("r1", "closed");
	expect_state("r2", "open");
	assert_int_equal(agg_close_due(db, now, err, sizeof err), 0);
	json_decref(entry_body(3, "round.closed", "r1"));
	assert_int_equal(agg_close_due(db, now + 3600, err, sizeof err), 1);
	expect_state("r2", "closed");
	expect_intact(4);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty),
		T(test_append_and_verify),
		T(test_append_in_transaction),
		T(test_triggers_refuse),
		T(test_replace_refused),
		T(test_tamper),
		T(test_tamper_rehashed),
		T(test_tamper_after_nul),
		T(test_round_open_close),
		T(test_closed_round_recount),
		T(test_round_wrong_state),
		T(test_round_overlap),
		T(test_round_atomic_with_ledger),
		T(test_close_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
