/* test_complaints.c - complaint tickets, rectification and reviews
 * (aggregator/complaints.c).
 *
 * The rules are checked with explicit times: tickets are made in hourly
 * batches per round and never sooner than an hour after the round opened;
 * a ticket moves only new -> in_progress -> resolved, resolving needs a note,
 * and a refused move changes nothing (not the ticket, not the ledger); the
 * time-to-resolve figures are the median and maximum of known durations;
 * a complaint's text is withheld until its unit has the round's k_comments
 * comments. The database is in memory; comments are inserted as the
 * collector would (collector/writer.c), with keys chosen by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "aggregator/agg.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/schema.h"
#include "tests/unit/fixture.h"

enum { T0 = 1800000000, H = 3600 };

static sqlite3 *db;
static char err[1024];

static int setup(void **state)
{
	(void)state;
	static const fixture_unit units[] = {
		{ "party", NULL, "committee", NULL, NULL, "tkparty0" },
		{ "gb1", "party", "general_branch", NULL, NULL, "tkgb1000" },
		{ "b11", "gb1", "branch", NULL, NULL, "tkb11000" },
		{ "b12", "gb1", "branch", NULL, NULL, "tkb12000" },
		{ "dept", "party", "department", NULL, NULL, "tkdept00" },
	};
	if (!(db = fixture_open(units, sizeof units / sizeof units[0])))
		return -1;
	agg_round_spec spec = { .id = "r1", .series = "s", .title_zh = "测评", .title_en = "Appraisal",
		.scope = "gb1", .form_path = "forms/branch.form" };
	if (agg_round_create(db, &spec, err, sizeof err) != 0 || agg_round_open(db, "r1", err, sizeof err) != 0) {
		print_error("round r1: %s\n", err);
		return -1;
	}
	/* The round opened at T0. */
	return db_exec(db, "UPDATE rounds SET opened_at = ? WHERE id = 'r1'", "I", (int64_t)T0) == SQLITE_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	db_close(db);
	db = NULL;
	return 0;
}

/* ---- helpers ---- */

/* A comment with key byte `key` (the rest zero). */
static void comment(unsigned char key, const char *unit, const char *body, bool complaint)
{
	unsigned char id[16] = { key };
	assert_int_equal(db_exec(db, "INSERT INTO comments(id, round, unit, body, complaint) VALUES (?, 'r1', ?, ?, ?)",
		"btti", id, sizeof id, unit, body, complaint ? 1 : 0), SQLITE_OK);
}

static int64_t count_of(const char *sql)
{
	return db_int(db, -1, sql, NULL);
}

static int sync_at(int64_t now, int64_t *next)
{
	err[0] = '\0';
	int n = agg_complaints_sync(db, now, "test", next, err, sizeof err);
	if (n < 0)
		print_error("agg_complaints_sync: %s\n", err);
	return n;
}

/* Three complaints (two for b11, one for b12) and a plain comment, made
 * into tickets 1-3 at T0 + 1 h. */
static void three_tickets(void)
{
	comment(0x30, "b11", "complaint c", true);
	comment(0x10, "b12", "complaint a", true);
	comment(0x20, "b11", "complaint b", true);
	comment(0x40, "b11", "plain", false);
	assert_int_equal(sync_at(T0 + H, NULL), 3);
}

static void expect_err(const char *part)
{
	if (!strstr(err, part))
		print_error("error \"%s\" does not say \"%s\"\n", err, part);
	assert_non_null(strstr(err, part));
}

static json_t *last_entry(const char *kind)
{
	char *body = db_text(db, "SELECT body FROM ledger WHERE kind = ? ORDER BY seq DESC LIMIT 1", "t", kind);
	assert_non_null(body);
	json_t *j = json_loads(body, 0, NULL);
	free(body);
	assert_non_null(j);
	return j;
}

/* ---- the transition rules ---- */

static void test_refusal_table(void **state)
{
	(void)state;
	static const struct {
		const char *from, *to;
		bool note, allowed;
	} cases[] = {
		{ "new", "in_progress", false, true },
		{ "new", "in_progress", true, true },
		{ "new", "resolved", true, true },            /* an office may settle it at once, with a note */
		{ "new", "resolved", false, false },
		{ "in_progress", "resolved", true, true },
		{ "in_progress", "resolved", false, false },
		{ "in_progress", "in_progress", true, false },
		{ "in_progress", "new", true, false },
		{ "new", "new", true, false },
		{ "resolved", "resolved", true, false },
		{ "resolved", "in_progress", true, false },
		{ "resolved", "new", true, false },
		{ "closed", "resolved", true, false },
		{ "new", "closed", true, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = agg_ticket_refusal(cases[i].from, cases[i].to, cases[i].note);
		if ((why == NULL) != cases[i].allowed)
			print_error("%s -> %s (note %d): %s\n", cases[i].from, cases[i].to, cases[i].note,
				why ? why : "allowed");
		assert_true((why == NULL) == cases[i].allowed);
	}
	assert_non_null(strstr(agg_ticket_refusal("new", "resolved", false), "note"));
	assert_non_null(strstr(agg_ticket_refusal("resolved", "in_progress", true), "resolved already"));
}

/* ---- batches ---- */

static void test_sync_hourly(void **state)
{
	(void)state;
	comment(0x30, "b11", "complaint c", true);
	comment(0x10, "b12", "complaint a", true);
	comment(0x20, "b11", "complaint b", true);
	comment(0x40, "b11", "plain", false);
	int64_t next = -1;
	assert_int_equal(sync_at(T0 + H - 1, &next), 0);     /* the round's first hour */
	assert_int_equal(next, T0 + H);
	assert_int_equal(count_of("SELECT count(*) FROM tickets"), 0);
	assert_int_equal(sync_at(T0 + H, &next), 3);
	assert_int_equal(next, 0);                            /* no round was left waiting */
	/* numbered in the order of the comments' keys; times are the batch's */
	assert_int_equal(count_of("SELECT count(*) FROM tickets t JOIN comments c ON c.id = t.comment "
		"WHERE t.opened_at = 1800003600 AND t.state = 'new' AND ((t.id = 1 AND c.body = 'complaint a') "
		"OR (t.id = 2 AND c.body = 'complaint b') OR (t.id = 3 AND c.body = 'complaint c'))"), 3);
	assert_int_equal(count_of("SELECT count(*) FROM ticket_steps WHERE step = 'opened' AND who = 'test'"), 3);
	assert_int_equal(count_of("SELECT count(*) FROM ledger WHERE kind = 'complaint.opened'"), 3);
	json_t *j = last_entry("complaint.opened");
	assert_int_equal(json_integer_value(json_object_get(j, "ticket")), 3);
	assert_string_equal(json_string_value(json_object_get(j, "unit")), "b11");
	assert_true(json_is_null(json_object_get(j, "note")));
	assert_null(json_object_get(j, "text"));
	assert_int_equal(json_object_size(j), 5);
	json_decref(j);

	comment(0x05, "b12", "complaint d", true);
	assert_int_equal(sync_at(T0 + 2 * H - 1, &next), 0);  /* within the hour after the last batch */
	assert_int_equal(next, T0 + 2 * H);
	assert_int_equal(sync_at(T0 + 2 * H, NULL), 1);
	assert_int_equal(count_of("SELECT count(*) FROM tickets t JOIN comments c ON c.id = t.comment "
		"WHERE t.id = 4 AND c.body = 'complaint d' AND t.opened_at = 1800007200"), 1);
	/* an open round's empty batch counts too: the next is an hour after it */
	assert_int_equal(sync_at(T0 + 3 * H + 30, &next), 0);
	comment(0x06, "b11", "complaint e", true);
	assert_int_equal(sync_at(T0 + 4 * H, &next), 0);
	assert_int_equal(next, T0 + 4 * H + 30);
	assert_int_equal(sync_at(T0 + 4 * H + 30, NULL), 1);
	/* a closed round with every complaint ticketed is not waited for */
	assert_int_equal(db_exec(db, "UPDATE rounds SET state = 'closed' WHERE id = 'r1'", NULL), SQLITE_OK);
	assert_int_equal(sync_at(T0 + 4 * H + 60, &next), 0);
	assert_int_equal(next, 0);
	assert_int_equal(count_of("SELECT count(*) FROM tickets"), 5);
}

static void test_sync_bad_who(void **state)
{
	(void)state;
	comment(0x10, "b11", "complaint", true);
	assert_int_equal(agg_complaints_sync(db, T0 + H, "", NULL, err, sizeof err), -1);
	expect_err("required");
	assert_int_equal(count_of("SELECT count(*) FROM tickets"), 0);
}

/* ---- moving tickets ---- */

static void test_moves(void **state)
{
	(void)state;
	three_tickets();
	int64_t entries = count_of("SELECT count(*) FROM ledger");
	assert_int_equal(agg_ticket_take(db, 1, "王书记", NULL, T0 + 2 * H, err, sizeof err), 0);
	assert_int_equal(count_of("SELECT count(*) FROM tickets WHERE id = 1 AND state = 'in_progress' "
		"AND taken_at = 1800007200 AND resolved_at IS NULL"), 1);
	json_t *j = last_entry("complaint.progress");
	assert_int_equal(json_integer_value(json_object_get(j, "ticket")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "who")), "王书记");
	assert_string_equal(json_string_value(json_object_get(j, "round")), "r1");
	assert_string_equal(json_string_value(json_object_get(j, "unit")), "b12");
	assert_true(json_is_null(json_object_get(j, "note")));
	json_decref(j);

	/* refused moves change nothing */
	assert_int_equal(agg_ticket_take(db, 1, "李老师", NULL, T0 + 3 * H, err, sizeof err), -1);
	expect_err("already in progress");
	assert_int_equal(agg_ticket_resolve(db, 1, "王书记", NULL, T0 + 3 * H, err, sizeof err), -1);
	expect_err("note");
	assert_int_equal(agg_ticket_resolve(db, 1, "王书记", " \n\t ", T0 + 3 * H, err, sizeof err), -1);
	expect_err("note");
	assert_int_equal(agg_ticket_take(db, 99, "王书记", NULL, T0 + 3 * H, err, sizeof err), -1);
	expect_err("no ticket 99");
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), entries + 1);
	assert_int_equal(count_of("SELECT count(*) FROM ticket_steps"), 3 + 1);

	assert_int_equal(agg_ticket_resolve(db, 1, "王书记", "已整改", T0 + 3 * H, err, sizeof err), 0);
	j = last_entry("complaint.resolved");
	assert_string_equal(json_string_value(json_object_get(j, "note")), "已整改");
	json_decref(j);
	assert_int_equal(agg_ticket_resolve(db, 1, "王书记", "again", T0 + 4 * H, err, sizeof err), -1);
	expect_err("resolved already");
	assert_int_equal(agg_ticket_take(db, 1, "王书记", NULL, T0 + 4 * H, err, sizeof err), -1);
	expect_err("resolved already");
	/* new -> resolved directly, with a note */
	assert_int_equal(agg_ticket_resolve(db, 2, "张委员", "当面解释", T0 + 4 * H, err, sizeof err), 0);
	assert_int_equal(count_of("SELECT count(*) FROM tickets WHERE id = 2 AND state = 'resolved' "
		"AND taken_at IS NULL AND resolved_at = 1800014400"), 1);
	assert_int_equal(count_of("SELECT count(*) FROM ledger"), entries + 3);

	/* names and notes are checked before anything is written */
	char long_name[AGG_WHO_MAX + 2];
	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_int_equal(agg_ticket_take(db, 3, long_name, NULL, T0 + 4 * H, err, sizeof err), -1);
	expect_err("too long");
	assert_int_equal(agg_ticket_take(db, 3, "a\nb", NULL, T0 + 4 * H, err, sizeof err), -1);
	expect_err("one line");
	assert_int_equal(agg_ticket_take(db, 3, "王", "bad \xff utf-8", T0 + 4 * H, err, sizeof err), -1);
	expect_err("UTF-8");
	assert_int_equal(agg_ticket_take(db, 3, "王", "bell \a", T0 + 4 * H, err, sizeof err), -1);
	expect_err("control");
	assert_int_equal(count_of("SELECT count(*) FROM tickets WHERE id = 3 AND state = 'new'"), 1);

	/* the database's own walls */
	assert_int_not_equal(db_exec(db, "UPDATE ticket_steps SET note = 'x'", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "DELETE FROM ticket_steps", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "DELETE FROM tickets WHERE id = 3", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "UPDATE tickets SET state = 'new' WHERE id = 1", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "UPDATE tickets SET opened_at = 0 WHERE id = 3", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "INSERT OR REPLACE INTO ticket_steps(id, ticket, step, who, note, at) "
		"SELECT id, ticket, step, who, 'forged', at FROM ticket_steps WHERE step = 'resolved'", NULL), SQLITE_OK);
	assert_int_not_equal(db_exec(db, "INSERT OR REPLACE INTO tickets(id, comment, round, unit, state, opened_at) "
		"SELECT id, comment, round, unit, 'new', opened_at FROM tickets WHERE id = 1", NULL), SQLITE_OK);
	assert_int_equal(count_of("SELECT count(*) FROM ticket_steps WHERE note = 'forged'"), 0);
	assert_int_equal(count_of("SELECT count(*) FROM tickets WHERE id = 1 AND state = 'resolved'"), 1);

	buf report;
	buf_init(&report, 4096);
	assert_int_equal(agg_ledger_verify(db, &report), 0);
	buf_free(&report);
}

/* ---- time to resolve ---- */

static void test_resolve_times(void **state)
{
	(void)state;
	/* b11: four tickets, three resolved after 2 h, 7 h and 3 h, one open;
	 * b12: two resolved after 1 h and 4 h (even count: median 2.5 h). */
	comment(0x01, "b11", "1", true);
	comment(0x02, "b11", "2", true);
	comment(0x03, "b11", "3", true);
	comment(0x04, "b11", "4", true);
	comment(0x05, "b12", "5", true);
	comment(0x06, "b12", "6", true);
	int64_t open = T0 + H;
	assert_int_equal(sync_at(open, NULL), 6);
	assert_int_equal(agg_ticket_resolve(db, 1, "a", "done", open + 2 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_take(db, 2, "a", NULL, open + 1 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_resolve(db, 2, "a", "done", open + 7 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_resolve(db, 3, "a", "done", open + 3 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_take(db, 4, "a", NULL, open + 1 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_resolve(db, 5, "a", "done", open + 1 * H, err, sizeof err), 0);
	assert_int_equal(agg_ticket_resolve(db, 6, "a", "done", open + 4 * H, err, sizeof err), 0);

	agg_resolve_time *r;
	size_t n;
	assert_int_equal(agg_resolve_times(db, "r1", open + 30 * H, &r, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].unit, "b11");
	assert_int_equal(r[0].tickets, 4);
	assert_int_equal(r[0].resolved, 3);
	assert_float_equal(r[0].median_hours, 3.0, 1e-9);
	assert_float_equal(r[0].max_hours, 7.0, 1e-9);
	assert_float_equal(r[0].oldest_open_hours, 30.0, 1e-9);
	assert_string_equal(r[1].unit, "b12");
	assert_int_equal(r[1].tickets, 2);
	assert_int_equal(r[1].resolved, 2);
	assert_float_equal(r[1].median_hours, 2.5, 1e-9);
	assert_float_equal(r[1].max_hours, 4.0, 1e-9);
	assert_float_equal(r[1].oldest_open_hours, 0.0, 1e-9);
	agg_resolve_times_free(r, n);

	assert_int_equal(agg_resolve_times(db, "nosuch", open, &r, &n, err, sizeof err), -1);
	expect_err("no round");
}

/* ---- k_comments ---- */

static void test_list_withholds(void **state)
{
	(void)state;
	comment(0x01, "b11", "b11 complaint", true);
	comment(0x02, "b12", "b12 complaint", true);
	for (unsigned char i = 0; i < 8; i++)
		comment((unsigned char)(0x10 + i), "b11", "plain", false);
	assert_int_equal(sync_at(T0 + H, NULL), 2);

	agg_ticket *t;
	size_t n;
	assert_int_equal(agg_tickets_list(db, "r1", NULL, NULL, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].unit, "b11");
	assert_int_equal(t[0].comments, 9);           /* one short of 10 */
	assert_int_equal(t[0].k_comments, 10);
	assert_null(t[0].text);
	assert_null(t[0].by);
	assert_int_equal(t[0].opened_at, T0 + H);
	assert_null(t[1].text);
	agg_tickets_free(t, n);

	comment(0x20, "b11", "plain", false);         /* the tenth */
	assert_int_equal(agg_ticket_take(db, 1, "王", NULL, T0 + 2 * H, err, sizeof err), 0);
	assert_int_equal(agg_tickets_list(db, NULL, "b11", NULL, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].text, "b11 complaint");
	assert_string_equal(t[0].by, "王");
	assert_string_equal(t[0].state, "in_progress");
	assert_int_equal(t[0].taken_at, T0 + 2 * H);
	agg_tickets_free(t, n);

	/* the round's own rule is used */
	agg_rules rules;
	agg_rules_default(&rules);
	rules.k_comments = 1;
	char *json = agg_rules_json(&rules);
	assert_int_equal(db_exec(db, "UPDATE rounds SET rules = ? WHERE id = 'r1'", "t", json), SQLITE_OK);
	free(json);
	assert_int_equal(agg_tickets_list(db, NULL, NULL, "new", &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].unit, "b12");
	assert_string_equal(t[0].text, "b12 complaint");
	agg_tickets_free(t, n);

	assert_int_equal(agg_tickets_list(db, NULL, NULL, "open", &t, &n, err, sizeof err), -1);
	expect_err("unknown state");
	assert_int_equal(agg_tickets_list(db, "nosuch", NULL, NULL, &t, &n, err, sizeof err), -1);
	expect_err("no round");
	assert_int_equal(agg_tickets_list(db, NULL, "nosuch", NULL, &t, &n, err, sizeof err), -1);
	expect_err("no unit");
}

/* ---- reviews and rectification ---- */

static void test_review_rectify(void **state)
{
	(void)state;
	int64_t seq = agg_review_add(db, "r1", NULL, "校党委书记", "总体良好", err, sizeof err);
	assert_true(seq > 0);
	assert_int_equal(count_of("SELECT max(seq) FROM ledger"), seq);
	json_t *j = last_entry("review.added");
	assert_true(json_is_null(json_object_get(j, "unit")));
	assert_string_equal(json_string_value(json_object_get(j, "text")), "总体良好");
	json_decref(j);
	assert_true(agg_review_add(db, "r1", "gb1", "部长", "好", err, sizeof err) > 0);    /* the scope */
	assert_true(agg_review_add(db, "r1", "b12", "部长", "好", err, sizeof err) > 0);    /* rated */
	assert_int_equal(agg_review_add(db, "r1", "party", "部长", "好", err, sizeof err), -1); /* above the scope */
	expect_err("not part of round");
	assert_int_equal(agg_review_add(db, "r1", "dept", "部长", "好", err, sizeof err), -1);
	assert_int_equal(agg_review_add(db, "nosuch", NULL, "部长", "好", err, sizeof err), -1);
	expect_err("no round");
	assert_int_equal(agg_review_add(db, "r1", NULL, "部长", "", err, sizeof err), -1);
	expect_err("required");

	assert_true(agg_rectify_add(db, "r1", "b11", "书记", "整改措施", err, sizeof err) > 0);
	j = last_entry("rectification.recorded");
	assert_string_equal(json_string_value(json_object_get(j, "unit")), "b11");
	assert_string_equal(json_string_value(json_object_get(j, "who")), "书记");
	json_decref(j);
	assert_int_equal(agg_rectify_add(db, "r1", NULL, "书记", "整改措施", err, sizeof err), -1);
	expect_err("--unit");

	agg_round_spec spec = { .id = "r2", .series = "s", .title_zh = "草稿", .title_en = "Draft",
		.form_path = "forms/branch.form" };
	assert_int_equal(agg_round_create(db, &spec, err, sizeof err), 0);
	assert_int_equal(agg_review_add(db, "r2", NULL, "部长", "好", err, sizeof err), -1);
	expect_err("not opened");
	assert_int_equal(count_of("SELECT count(*) FROM ledger WHERE kind IN ('review.added', 'rectification.recorded')"), 4);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusal_table),
		T(test_sync_hourly),
		T(test_sync_bad_who),
		T(test_moves),
		T(test_resolve_times),
		T(test_list_withholds),
		T(test_review_rectify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
