/* test_tally.c - a round's figures (aggregator/tally.c, report.c, rules.c).
 *
 * Each test builds a fresh in-memory database with a small organisation:
 *
 *   party (committee)
 *     gb1 (general branch)  -> b11, b12 (branches)
 *     gb2 (general branch)  -> b21
 *     office (department)   -> w1 (window): not rated by the branch form
 *
 * opens a round on forms/branch.form (tests run from the repository root)
 * and writes the counters directly, as the collector does, so that the
 * arithmetic can be checked exactly: every threshold is tried at equality
 * and just below. The writers' output is read back with jansson and with
 * our CSV reader, and a figure under k must not appear in any of them. */
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
#include "common/buf.h"
#include "common/csv.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/schema.h"
#include "tests/unit/fixture.h"
#include "common/str.h"

static sqlite3 *db;

static void exec_ok(const char *sql) { fixture_exec(db, sql); }

static int setup(void **state)
{
	(void)state;
	static const fixture_unit units[] = {
		{ "party", NULL, "committee", "党委", "Party Committee", "tkparty0" },
		{ "gb1", "party", "general_branch", "机关党总支", "Admin General Branch", "tkgb1000" },
		{ "b11", "gb1", "branch", "第一党支部", "Branch One", "tkb11000" },
		{ "b12", "gb1", "branch", "第二党支部", "Branch Two", "tkb12000" },
		{ "gb2", "party", "general_branch", "学院党总支", "School General Branch", "tkgb2000" },
		{ "b21", "gb2", "branch", "学生党支部", "Student Branch", "tkb21000" },
		{ "office", "party", "department", "后勤处", "Logistics Office", "tkoffice" },
		{ "w1", "office", "window", "维修窗口", "Repair Desk", "tkw10000" },
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

static void create_round(const char *id, const char *scope)
{
	char err[512] = "";
	agg_round_spec spec = { .id = id, .series = "2026h1", .title_zh = "2026年上半年支部测评",
		.title_en = "2026 H1 branch appraisal", .scope = scope, .form_path = "forms/branch.form" };
	int rc = agg_round_create(db, &spec, err, sizeof err);
	if (rc != 0)
		print_error("agg_round_create: %s\n", err);
	assert_int_equal(rc, 0);
}

static void open_round(const char *id, const char *scope)
{
	char err[512] = "";
	create_round(id, scope);
	int rc = agg_round_open(db, id, err, sizeof err);
	if (rc != 0)
		print_error("agg_round_open: %s\n", err);
	assert_int_equal(rc, 0);
}

/* Add n answers of one level to a counter, as the collector does. */
static void count(const char *round, const char *unit, const char *grp, const char *question,
	const char *level, int n)
{
	if (n == 0)
		return;
	assert_int_equal(db_exec(db, "INSERT INTO counts(round, unit, grp, question, level, n) "
		"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n", "tttttI",
		round, unit, grp, question, level, (int64_t)n), SQLITE_OK);
}

static void ballots(const char *round, const char *unit, const char *grp, int n)
{
	assert_int_equal(db_exec(db, "INSERT INTO ballot_counts(round, unit, grp, n) VALUES (?, ?, ?, ?) "
		"ON CONFLICT DO UPDATE SET n = n + excluded.n", "tttI", round, unit, grp, (int64_t)n), SQLITE_OK);
}

/* Answers to one question (no ballots counted). */
static void answers(const char *round, const char *unit, const char *grp, const char *question,
	int s, int b, int d, int u)
{
	count(round, unit, grp, question, "s", s);
	count(round, unit, grp, question, "b", b);
	count(round, unit, grp, question, "d", d);
	count(round, unit, grp, question, "u", u);
}

/* s + b + d + u ballots whose overall answers are these. */
static void vote(const char *unit, const char *grp, int s, int b, int d, int u)
{
	answers("r1", unit, grp, "overall", s, b, d, u);
	ballots("r1", unit, grp, s + b + d + u);
}

static void load(const char *round, agg_tally *t)
{
	char err[512] = "";
	int rc = agg_tally_load(db, round, t, err, sizeof err);
	if (rc != 0)
		print_error("agg_tally_load: %s\n", err);
	assert_int_equal(rc, 0);
}

static const agg_unit *unit_of(const agg_tally *t, const char *id)
{
	for (size_t i = 0; i < t->n_units; i++)
		if (strcmp(t->units[i].id, id) == 0)
			return &t->units[i];
	return NULL;
}

static int question_index(const agg_tally *t, const char *name)
{
	for (size_t q = 0; q < t->form->n_questions; q++)
		if (strcmp(t->form->questions[q].name, name) == 0)
			return (int)q;
	fail_msg("no question %s", name);
	return -1;
}

/* The counters, and the derived figures to the last bit. */
static void check_figures(const agg_figures *f, int64_t ballots_n, int64_t s, int64_t b, int64_t d,
	bool shown)
{
	int64_t valid = s + b + d;
	assert_int_equal(f->ballots, ballots_n);
	assert_int_equal(f->valid, valid);
	assert_int_equal(f->satisfied, s + b);
	assert_int_equal(f->dissatisfied, d);
	assert_int_equal(f->points, 100 * s + 75 * b);
	assert_int_equal(f->shown, shown);
	if (valid > 0) {
		assert_true(f->rate == (double)(s + b) / (double)valid);
		assert_true(f->score == (double)(100 * s + 75 * b) / (double)valid);
		assert_true(f->dissatisfied_share == (double)d / (double)valid);
		assert_int_equal(f->met, f->rate >= 0.95);
	}
}

/* ---- the arithmetic ---- */

static void test_figures_exact(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("b11", "群众", 15, 4, 1, 3);
	agg_tally t;
	load("r1", &t);
	const agg_unit *u = unit_of(&t, "b11");
	assert_non_null(u);
	assert_true(u->rated);
	check_figures(&u->own, 23, 15, 4, 1, true);
	assert_true(u->own.rate == 0.95);
	assert_true(u->own.score == 90.0);
	assert_true(u->own.dissatisfied_share == 0.05);
	assert_true(u->own.met);
	assert_string_equal(u->grade, "先进");
	assert_false(u->has_subtree);
	/* Rules as DESIGN.md §2 gives them. */
	assert_true(t.rules.target == 0.95);
	assert_int_equal(t.rules.k_scores, 5);
	assert_string_equal(t.round, "r1");
	assert_string_equal(t.series, "2026h1");
	assert_string_equal(t.state, "open");
	assert_string_equal(t.form->id, "branch");
	agg_tally_free(&t);
}

/* Each threshold at equality and just below it; b11 alone has ballots. */
static void test_grades_at_thresholds(void **state)
{
	(void)state;
	static const struct {
		int s, b, d, u;
		const char *grade;
		bool shown, met;
	} cases[] = {
		{ 15, 4, 1, 0, "先进", true, true },   /* rate 0.95, score 90: both exactly */
		{ 14, 5, 1, 0, "较好", true, true },   /* rate 0.95, score 88.75 */
		{ 12, 8, 0, 0, "先进", true, true },   /* rate 1, score 90 */
		{ 11, 9, 0, 0, "较好", true, true },   /* rate 1, score 88.75 */
		{ 57, 0, 3, 0, "先进", true, true },   /* 57/60 = 0.95 */
		{ 18, 0, 1, 0, "较好", true, false },  /* 18/19 = 0.947, score 94.7 */
		{ 18, 0, 2, 0, "较好", true, false },  /* rate 0.90 exactly */
		{ 17, 0, 2, 0, "一般", true, false },  /* 17/19 = 0.895 */
		{ 16, 0, 4, 0, "一般", true, false },  /* rate 0.80 exactly */
		{ 15, 0, 4, 0, "后进", true, false },  /* 15/19 = 0.789 */
		{ 0, 0, 5, 0, "后进", true, false },
		{ 4, 0, 2, 0, "后进", true, false },   /* dissatisfied exactly 1/3 */
		{ 5, 0, 0, 0, "先进", true, true },    /* valid = k */
		{ 5, 0, 0, 9, "先进", true, true },    /* 不了解 does not count */
		{ 4, 0, 0, 0, "未定", false, false },  /* valid = k - 1 */
		{ 0, 4, 0, 6, "未定", false, false },  /* 10 ballots, 4 valid */
		{ 0, 0, 0, 7, "未定", false, false },  /* all 不了解: valid 0 */
		{ 0, 0, 0, 0, "未定", false, false },  /* no ballots */
	};
	open_round("r1", NULL);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		exec_ok("DELETE FROM counts; DELETE FROM ballot_counts");
		vote("b11", "群众", cases[i].s, cases[i].b, cases[i].d, cases[i].u);
		agg_tally t;
		load("r1", &t);
		const agg_unit *u = unit_of(&t, "b11");
		assert_non_null(u);
		agg_figures f = u->own;
		char grade[AGG_GRADE_MAX];
		str_copy(grade, sizeof grade, u->grade);
		agg_tally_free(&t);
		if (strcmp(grade, cases[i].grade) != 0 || f.shown != cases[i].shown)
			print_error("case %zu (%d s, %d b, %d d, %d u): grade %s, shown %d\n", i,
				cases[i].s, cases[i].b, cases[i].d, cases[i].u, grade, f.shown);
		check_figures(&f, cases[i].s + cases[i].b + cases[i].d + cases[i].u,
			cases[i].s, cases[i].b, cases[i].d, cases[i].shown);
		assert_string_equal(grade, cases[i].grade);
		if (cases[i].shown)
			assert_int_equal(f.met, cases[i].met);
	}
}

/* Rules written into the round, as a round with its own rules would have. */
static void set_rules(const agg_rules *r)
{
	char *json = agg_rules_json(r);
	assert_int_equal(db_exec(db, "UPDATE rounds SET rules = ? WHERE id = 'r1'", "t", json), SQLITE_OK);
	free(json);
}

/* With the default grades a dissatisfied share over 1/3 always falls to the
 * last grade anyway (the rate is then under 2/3); a lenient grade makes the
 * veto the only thing that decides. */
static void test_veto(void **state)
{
	(void)state;
	open_round("r1", NULL);
	agg_rules r;
	agg_rules_default(&r);
	r.n_grades = 0;
	str_copy(r.grades[0].name, sizeof r.grades[0].name, "合格");
	r.grades[0].min_rate = 0.6;
	r.grades[0].min_score = 0;
	r.n_grades = 1;
	set_rules(&r);
	static const struct { int s, d; const char *grade; } cases[] = {
		{ 4, 2, "合格" },    /* exactly 1/3: not vetoed */
		{ 6, 3, "合格" },
		{ 20, 10, "合格" },
		{ 7, 4, "后进" },    /* 4 of 11 > 1/3 although the rate is 0.636 */
		{ 13, 7, "后进" },   /* 0.35 */
		{ 5, 2, "合格" },
		{ 3, 2, "后进" },    /* rate 0.6 but 0.4 dissatisfied */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		exec_ok("DELETE FROM counts; DELETE FROM ballot_counts");
		vote("b11", "群众", cases[i].s, 0, cases[i].d, 0);
		agg_tally t;
		load("r1", &t);
		const agg_unit *u = unit_of(&t, "b11");
		bool same = strcmp(u->grade, cases[i].grade) == 0;
		if (!same)
			print_error("%d satisfied, %d dissatisfied: %s, want %s\n", cases[i].s, cases[i].d,
				u->grade, cases[i].grade);
		agg_tally_free(&t);
		assert_true(same);
	}
}

/* The grading minimum and the display minimum are separate rules. */
static void test_min_valid(void **state)
{
	(void)state;
	open_round("r1", NULL);
	agg_rules r;
	agg_rules_default(&r);
	r.min_valid = 10;
	set_rules(&r);
	vote("b11", "群众", 9, 0, 0, 0);
	vote("b12", "群众", 10, 0, 0, 0);
	agg_tally t;
	load("r1", &t);
	assert_true(unit_of(&t, "b11")->own.shown);
	assert_string_equal(unit_of(&t, "b11")->grade, "未定");
	assert_string_equal(unit_of(&t, "b12")->grade, "先进");
	agg_tally_free(&t);
}

/* ---- the tree ---- */

static void add_figures(agg_figures *sum, const agg_figures *f)
{
	sum->ballots += f->ballots;
	sum->valid += f->valid;
	sum->satisfied += f->satisfied;
	sum->dissatisfied += f->dissatisfied;
	sum->points += f->points;
}

static void same_counts(const agg_figures *a, const agg_figures *b)
{
	assert_int_equal(a->ballots, b->ballots);
	assert_int_equal(a->valid, b->valid);
	assert_int_equal(a->satisfied, b->satisfied);
	assert_int_equal(a->dissatisfied, b->dissatisfied);
	assert_int_equal(a->points, b->points);
}

static void test_rollup(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("gb1", "群众", 6, 1, 0, 2);
	vote("b11", "群众", 15, 4, 1, 3);
	vote("b12", "群众", 3, 1, 1, 0);   /* 5 valid: exactly k */
	vote("b21", "群众", 10, 0, 0, 0);
	vote("gb2", "群众", 0, 0, 0, 4);
	agg_tally t;
	load("r1", &t);

	/* Rated units and their ancestors, in tree order; office and w1 are
	 * not rated by the branch form and have nothing rated below them. */
	static const struct { const char *id, *parent; int depth; bool rated, sub; } want[] = {
		{ "party", NULL, 0, false, true },
		{ "gb1", "party", 1, true, true },
		{ "b11", "gb1", 2, true, false },
		{ "b12", "gb1", 2, true, false },
		{ "gb2", "party", 1, true, true },
		{ "b21", "gb2", 2, true, false },
	};
	assert_int_equal(t.n_units, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < t.n_units; i++) {
		const agg_unit *u = &t.units[i];
		assert_string_equal(u->id, want[i].id);
		if (want[i].parent)
			assert_string_equal(u->parent, want[i].parent);
		else
			assert_null(u->parent);
		assert_int_equal(u->depth, want[i].depth);
		assert_int_equal(u->rated, want[i].rated);
		assert_int_equal(u->has_subtree, want[i].sub);
		if (!u->rated)
			assert_null(u->grade);
	}
	const agg_unit *party = unit_of(&t, "party"), *gb1 = unit_of(&t, "gb1"),
		*b11 = unit_of(&t, "b11"), *b12 = unit_of(&t, "b12"), *gb2 = unit_of(&t, "gb2"),
		*b21 = unit_of(&t, "b21");
	assert_string_equal(party->name_zh, "党委");
	assert_string_equal(b11->name_en, "Branch One");
	assert_string_equal(b11->kind, "branch");
	assert_string_equal(b11->token, "tkb11000");

	/* gb1's subtree = its own + b11 + b12. */
	agg_figures sum = { 0 };
	add_figures(&sum, &gb1->own);
	add_figures(&sum, &b11->own);
	add_figures(&sum, &b12->own);
	same_counts(&gb1->subtree, &sum);
	check_figures(&gb1->subtree, 9 + 23 + 5, 6 + 15 + 3, 1 + 4 + 1, 0 + 1 + 1, true);
	/* gb2: its 4 ballots are all 不了解, b21's count. */
	check_figures(&gb2->own, 4, 0, 0, 0, false);
	assert_string_equal(gb2->grade, "未定");
	check_figures(&gb2->subtree, 14, 10, 0, 0, true);
	/* party pools everything, having no ballots of its own. */
	agg_figures all = { 0 };
	add_figures(&all, &gb1->subtree);
	add_figures(&all, &gb2->subtree);
	same_counts(&party->subtree, &all);
	check_figures(&party->subtree, 37 + 14, 34, 6, 2, true);
	check_figures(&b12->own, 5, 3, 1, 1, true);
	assert_string_equal(b12->grade, "一般");   /* rate 0.8 exactly */
	check_figures(&b21->own, 10, 10, 0, 0, true);
	agg_tally_free(&t);
}

static void test_scope(void **state)
{
	(void)state;
	open_round("r1", "gb1");
	vote("b11", "群众", 5, 0, 0, 0);
	vote("b21", "群众", 5, 0, 0, 0); /* not in the round: ignored */
	agg_tally t;
	load("r1", &t);
	assert_int_equal(t.n_units, 3);
	assert_string_equal(t.units[0].id, "gb1");
	assert_int_equal(t.units[0].depth, 0);
	assert_string_equal(t.units[0].parent, "party");
	assert_string_equal(t.units[1].id, "b11");
	assert_int_equal(t.units[1].depth, 1);
	assert_string_equal(t.units[2].id, "b12");
	check_figures(&t.units[0].subtree, 5, 5, 0, 0, true);
	assert_null(unit_of(&t, "party"));
	assert_null(unit_of(&t, "b21"));
	agg_tally_free(&t);
}

static void test_voter_groups(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("b11", "群众", 10, 0, 0, 0);
	vote("b11", "党员", 3, 0, 2, 1);
	vote("b11", "中层干部", 0, 2, 0, 0);
	agg_tally t;
	load("r1", &t);
	check_figures(&unit_of(&t, "b11")->own, 18, 13, 2, 2, true);
	check_figures(&unit_of(&t, "gb1")->subtree, 18, 13, 2, 2, true);
	agg_tally_free(&t);
}

/* Counters the tally must not pick up. */
static void test_foreign_counters_ignored(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("b11", "群众", 5, 0, 0, 0);
	count("r1", "b11", "群众", "overall", "x", 7);       /* no such level */
	count("r1", "b11", "群众", "nosuch", "s", 7);        /* no such question */
	count("r2", "b11", "群众", "overall", "d", 7);       /* another round */
	ballots("r2", "b11", "群众", 7);
	count("r1", "office", "群众", "overall", "d", 7);    /* not rated */
	count("r1", "nobody", "群众", "overall", "d", 7);    /* no such unit */
	ballots("r1", "nobody", "群众", 7);
	agg_tally t;
	load("r1", &t);
	check_figures(&unit_of(&t, "b11")->own, 5, 5, 0, 0, true);
	check_figures(&unit_of(&t, "party")->subtree, 5, 5, 0, 0, true);
	assert_null(unit_of(&t, "office"));
	agg_tally_free(&t);
}

static void test_per_question(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("b11", "群众", 10, 0, 0, 0);
	answers("r1", "b11", "群众", "leadership", 3, 0, 0, 7);
	answers("r1", "b11", "群众", "members", 4, 2, 1, 3);
	vote("b11", "党员", 1, 0, 0, 0);          /* a ballot from another group */
	answers("r1", "b11", "党员", "members", 0, 0, 1, 0);
	agg_tally t;
	load("r1", &t);
	const agg_unit *u = unit_of(&t, "b11");
	assert_int_equal(t.form->n_questions, 6);
	check_figures(&u->questions[question_index(&t, "leadership")], 11, 3, 0, 0, false);
	check_figures(&u->questions[question_index(&t, "members")], 11, 4, 2, 2, true);
	check_figures(&u->questions[question_index(&t, "mechanism")], 11, 0, 0, 0, false);
	check_figures(&u->questions[question_index(&t, "overall")], 11, 11, 0, 0, true);
	/* Only the overall question makes the unit's figures. */
	check_figures(&u->own, 11, 11, 0, 0, true);
	agg_tally_free(&t);
}

static void test_unknown_round(void **state)
{
	(void)state;
	agg_tally t;
	char err[256] = "";
	assert_int_equal(agg_tally_load(db, "nosuch", &t, err, sizeof err), -1);
	assert_non_null(strstr(err, "no round \"nosuch\""));
	assert_int_equal(t.n_units, 0);
	agg_tally_free(&t);
}

/* ---- writers ---- */

static json_t *tally_json(const agg_tally *t)
{
	buf out;
	buf_init(&out, 1 << 20);
	agg_tally_json(t, &out);
	assert_false(out.overflow);
	json_error_t je;
	json_t *root = json_loads(buf_str(&out), JSON_REJECT_DUPLICATES, &je);
	if (!root)
		print_error("invalid JSON (%s): %s\n", je.text, buf_str(&out));
	buf_free(&out);
	assert_non_null(root);
	return root;
}

static json_t *json_unit(json_t *root, const char *id)
{
	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(root, "units"), i, u)
		if (strcmp(json_string_value(json_object_get(u, "id")), id) == 0)
			return u;
	return NULL;
}

/* The writers' fixture: b11 (4 valid) and b12 (3 valid) are under k, so
 * their figures are hidden; gb1's own 10 are shown, and so is its subtree
 * (17), which gives away only b11 and b12 together (7, not under k). b21
 * has 20, exactly at the thresholds. */
static void writers_fixture(void)
{
	open_round("r1", NULL);
	vote("gb1", "群众", 10, 0, 0, 0);
	vote("b11", "群众", 4, 0, 0, 0);
	vote("b12", "群众", 2, 0, 1, 0);
	vote("b21", "群众", 15, 4, 1, 0);
}

static void expect_real(json_t *o, const char *key, double want)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_real(v) || json_real_value(v) != want)
		print_error("%s: want %.17g\n", key, want);
	assert_true(json_is_real(v) && json_real_value(v) == want);
}

static void test_json(void **state)
{
	(void)state;
	writers_fixture();
	exec_ok("UPDATE units SET name_zh = '名\"称' || char(10) || '<x>\\ ' || char(1) WHERE id = 'b21'");
	agg_tally t;
	load("r1", &t);
	json_t *root = tally_json(&t);
	agg_tally_free(&t);

	assert_string_equal(json_string_value(json_object_get(root, "round")), "r1");
	assert_string_equal(json_string_value(json_object_get(root, "series")), "2026h1");
	assert_string_equal(json_string_value(json_object_get(root, "title_zh")), "2026年上半年支部测评");
	assert_string_equal(json_string_value(json_object_get(root, "title_en")), "2026 H1 branch appraisal");
	assert_string_equal(json_string_value(json_object_get(root, "state")), "open");
	expect_real(root, "target", 0.95);
	assert_int_equal(json_integer_value(json_object_get(root, "k")), 5);
	json_t *units = json_object_get(root, "units");
	assert_int_equal(json_array_size(units), 6);
	static const char *const order[] = { "party", "gb1", "b11", "b12", "gb2", "b21" };
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(units, i), "id")), order[i]);

	json_t *party = json_unit(root, "party");
	assert_true(json_is_null(json_object_get(party, "parent")));
	assert_int_equal(json_integer_value(json_object_get(party, "depth")), 0);
	assert_true(json_is_false(json_object_get(party, "rated")));
	assert_true(json_is_null(json_object_get(party, "own")));
	assert_true(json_is_null(json_object_get(party, "grade")));
	assert_true(json_is_null(json_object_get(party, "questions")));
	json_t *sub = json_object_get(party, "subtree");
	assert_int_equal(json_integer_value(json_object_get(sub, "ballots")), 37);
	assert_int_equal(json_integer_value(json_object_get(sub, "valid")), 37);
	expect_real(sub, "rate", 0.9459);        /* 35/37, "%.4f" */
	expect_real(sub, "score", 91.89);        /* 3400/37 */
	expect_real(sub, "dissatisfied", 0.0541);
	assert_true(json_is_false(json_object_get(sub, "met")));

	/* b11: 4 valid, under k: its counts, but no figures. */
	json_t *b11 = json_unit(root, "b11");
	assert_string_equal(json_string_value(json_object_get(b11, "parent")), "gb1");
	assert_int_equal(json_integer_value(json_object_get(b11, "depth")), 2);
	assert_true(json_is_true(json_object_get(b11, "rated")));
	json_t *own = json_object_get(b11, "own");
	assert_int_equal(json_integer_value(json_object_get(own, "ballots")), 4);
	assert_int_equal(json_integer_value(json_object_get(own, "valid")), 4);
	static const char *const hidden[] = { "rate", "score", "dissatisfied", "met" };
	for (size_t i = 0; i < 4; i++) {
		assert_non_null(json_object_get(own, hidden[i]));
		assert_true(json_is_null(json_object_get(own, hidden[i])));
	}
	assert_string_equal(json_string_value(json_object_get(b11, "grade")), "未定");
	assert_true(json_is_null(json_object_get(b11, "subtree")));
	json_t *qs = json_object_get(b11, "questions");
	assert_int_equal(json_object_size(qs), 6);
	assert_true(json_is_null(json_object_get(json_object_get(qs, "overall"), "rate")));

	/* gb1: its own 10 and its subtree 17, both shown. */
	json_t *gb1 = json_unit(root, "gb1");
	own = json_object_get(gb1, "own");
	expect_real(own, "rate", 1.0);
	expect_real(own, "score", 100.0);
	assert_string_equal(json_string_value(json_object_get(gb1, "grade")), "先进");
	sub = json_object_get(gb1, "subtree");
	assert_int_equal(json_integer_value(json_object_get(sub, "valid")), 17);
	expect_real(sub, "rate", 0.9412);        /* 16/17 */
	expect_real(sub, "score", 94.12);
	expect_real(sub, "dissatisfied", 0.0588);
	assert_true(json_is_false(json_object_get(sub, "met")));

	/* b21: exactly at the thresholds. */
	json_t *b21 = json_unit(root, "b21");
	own = json_object_get(b21, "own");
	assert_int_equal(json_integer_value(json_object_get(own, "ballots")), 20);
	expect_real(own, "rate", 0.95);
	expect_real(own, "score", 90.0);
	expect_real(own, "dissatisfied", 0.05);
	assert_true(json_is_true(json_object_get(own, "met")));
	assert_string_equal(json_string_value(json_object_get(b21, "grade")), "先进");
	qs = json_object_get(b21, "questions");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(qs, "overall"), "valid")), 20);
	assert_true(json_is_null(json_object_get(json_object_get(qs, "leadership"), "rate")));
	/* Names come back exactly, whatever they contain. */
	assert_string_equal(json_string_value(json_object_get(b21, "name_zh")), "名\"称\n<x>\\ \x01");

	/* gb2 has no ballots of its own: nothing to show, nothing to grade. */
	json_t *gb2 = json_unit(root, "gb2");
	assert_true(json_is_null(json_object_get(json_object_get(gb2, "own"), "rate")));
	assert_string_equal(json_string_value(json_object_get(gb2, "grade")), "未定");
	json_decref(root);
}

/* The question keys come in the form's order. */
static void test_json_question_order(void **state)
{
	(void)state;
	open_round("r1", NULL);
	agg_tally t;
	load("r1", &t);
	buf out;
	buf_init(&out, 1 << 20);
	agg_tally_json(&t, &out);
	agg_tally_free(&t);
	const char *b11 = strstr(buf_str(&out), "\"id\":\"b11\"");
	assert_non_null(b11);
	static const char *const order[] = { "\"leadership\":", "\"members\":", "\"mechanism\":",
		"\"performance\":", "\"reputation\":", "\"overall\":" };
	const char *at = b11;
	for (size_t i = 0; i < 6; i++) {
		const char *next = strstr(at, order[i]);
		if (!next)
			buf_free(&out);
		assert_non_null(next);
		at = next;
	}
	buf_free(&out);
}

/* Reads CSV text into rows (at most 16); returns how many. */
static size_t read_csv(const buf *text, csv_row *rows, size_t max)
{
	FILE *f = fmemopen(text->data, text->len, "r");
	assert_non_null(f);
	csv_reader r;
	csv_open(&r, f);
	size_t n = 0;
	char err[256];
	int rc;
	while (n < max && (rc = csv_next(&r, &rows[n], err, sizeof err)) == 1)
		n++;
	fclose(f);
	return n;
}

static void test_csv(void **state)
{
	(void)state;
	writers_fixture();
	exec_ok("UPDATE units SET name_zh = '=HYPERLINK(\"x\"), \"总支\"' WHERE id = 'gb2'");
	agg_tally t;
	load("r1", &t);
	buf out;
	buf_init(&out, 1 << 20);
	agg_tally_csv(&t, &out);
	size_t n_units = t.n_units;
	agg_tally_free(&t);

	const char *s = buf_str(&out);
	assert_memory_equal(s, "\xEF\xBB\xBF", 3);
	size_t lines = 0;
	for (size_t i = 0; i < out.len; i++)
		if (s[i] == '\n') {
			assert_true(i > 0 && s[i - 1] == '\r');
			lines++;
		}
	assert_int_equal(lines, n_units + 1);
	assert_true(out.len >= 2 && s[out.len - 2] == '\r' && s[out.len - 1] == '\n');

	csv_row rows[16];
	size_t n = read_csv(&out, rows, 16);
	buf_free(&out);
	assert_int_equal(n, n_units + 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rows[i].n, 15);
	assert_string_equal(rows[0].fields[0], "单位编号");
	assert_string_equal(rows[0].fields[6], "满意率");

	int seen = 0;
	for (size_t i = 1; i < n; i++) {
		char **c = rows[i].fields;
		if (strcmp(c[0], "b11") == 0) {      /* hidden: counts only */
			seen++;
			assert_string_equal(c[2], "gb1");
			assert_string_equal(c[4], "4");
			assert_string_equal(c[5], "4");
			assert_string_equal(c[6], "");
			assert_string_equal(c[7], "");
			assert_string_equal(c[8], "");
			assert_string_equal(c[9], "未定");
			assert_string_equal(c[10], "");
		} else if (strcmp(c[0], "b21") == 0) {
			seen++;
			assert_string_equal(c[1], "学生党支部");
			assert_string_equal(c[4], "20");
			assert_string_equal(c[6], "95.00%");
			assert_string_equal(c[7], "90.00");
			assert_string_equal(c[8], "是");
			assert_string_equal(c[9], "先进");
		} else if (strcmp(c[0], "party") == 0) {
			seen++;
			assert_string_equal(c[2], "");
			assert_string_equal(c[4], "");  /* not rated: no own figures */
			assert_string_equal(c[6], "");
			assert_string_equal(c[9], "");
			assert_string_equal(c[10], "37");
			assert_string_equal(c[11], "37");
			assert_string_equal(c[12], "94.59%");
			assert_string_equal(c[13], "91.89");
			assert_string_equal(c[14], "否");
		} else if (strcmp(c[0], "gb2") == 0) {
			seen++;
			assert_string_equal(c[1], "'=HYPERLINK(\"x\"), \"总支\"");
		}
	}
	for (size_t i = 0; i < n; i++)
		csv_row_free(&rows[i]);
	assert_int_equal(seen, 4);
}

/* A unit under k: none of its figures may appear in any output, and
 * nothing that pools only it either. */
static void test_hidden_never_written(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("b11", "群众", 3, 1, 0, 0); /* rate 100%, score 93.75 */
	answers("r1", "b11", "群众", "members", 3, 1, 0, 0);
	agg_tally t;
	load("r1", &t);
	buf out[4];
	for (int i = 0; i < 4; i++)
		buf_init(&out[i], 1 << 20);
	agg_tally_json(&t, &out[0]);
	agg_tally_csv(&t, &out[1]);
	agg_tally_text(&t, &out[2]);
	agg_tally_html(&t, FORM_ZH, &out[3]);
	agg_tally_free(&t);
	static const char *const figures[] = { "1.0000", "100.0", "93.75", "93.8", "0.0000" };
	bool leaked = false;
	for (int i = 0; i < 4; i++) {
		for (size_t k = 0; k < sizeof figures / sizeof figures[0]; k++)
			if (strstr(buf_str(&out[i]), figures[k])) {
				print_error("writer %d shows %s:\n%s\n", i, figures[k], buf_str(&out[i]));
				leaked = true;
			}
	}
	assert_non_null(strstr(buf_str(&out[2]), "—"));
	assert_non_null(strstr(buf_str(&out[3]), "class=\"hidden\""));
	for (int i = 0; i < 4; i++)
		buf_free(&out[i]);
	assert_false(leaked);
}

/* DESIGN.md §2: "No view, export or message may reveal a cell under k,
 * directly or as the difference of two shown figures." gb1 has 10 ballots
 * of its own (shown) and b11 below it has 2 (hidden); if gb1's subtree
 * (12) is shown too, b11's answers are subtree minus own. Checked for every
 * pair of shown figures where one pools a subset of the other's ballots. */
static void check_difference(const char *what, const agg_figures *big, const agg_figures *small,
	int k, bool *bad)
{
	if (!big->shown || !small->shown)
		return;
	int64_t diff = big->valid - small->valid;
	if (diff > 0 && diff < k) {
		print_error("%s: %lld valid answers = %lld - %lld are revealed by difference "
			"(satisfied %lld)\n", what, (long long)diff, (long long)big->valid,
			(long long)small->valid, (long long)(big->satisfied - small->satisfied));
		*bad = true;
	}
}

static void test_privacy_no_reveal_by_difference(void **state)
{
	(void)state;
	open_round("r1", NULL);
	vote("gb1", "群众", 10, 0, 0, 0);
	vote("b11", "群众", 1, 0, 1, 0);
	vote("b21", "群众", 20, 0, 0, 0);
	vote("gb2", "群众", 0, 0, 3, 0);
	agg_tally t;
	load("r1", &t);
	bool bad = false;
	for (size_t i = 0; i < t.n_units; i++) {
		const agg_unit *u = &t.units[i];
		if (u->rated && u->has_subtree)
			check_difference(u->id, &u->subtree, &u->own, t.rules.k_scores, &bad);
		const agg_unit *p = u->parent ? unit_of(&t, u->parent) : NULL;
		if (p && p->has_subtree) {
			check_difference(u->id, &p->subtree, u->has_subtree ? &u->subtree : &u->own,
				t.rules.k_scores, &bad);
		}
	}
	agg_tally_free(&t);
	assert_false(bad);
}

/* ---- trends ---- */

static void close_round(const char *id)
{
	char err[512] = "";
	int rc = agg_round_close(db, id, err, sizeof err);
	if (rc != 0)
		print_error("agg_round_close: %s\n", err);
	assert_int_equal(rc, 0);
}

/* Two rounds of a series opened within the same second (a script, or the
 * clock's granularity): each is the other's "previous round" unless the
 * order is strict, and the trend walk goes round in a circle, counting the
 * same two rounds again and again as consecutive 后进 grades. */
static void test_trend_rounds_in_same_second(void **state)
{
	(void)state;
	open_round("ra", NULL);
	answers("ra", "b11", "群众", "overall", 0, 0, 5, 0);
	ballots("ra", "b11", "群众", 5);
	close_round("ra");
	open_round("rb", NULL);
	answers("rb", "b11", "群众", "overall", 0, 0, 6, 0);
	ballots("rb", "b11", "群众", 6);
	close_round("rb");
	exec_ok("UPDATE rounds SET opened_at = 1800000000, closed_at = 1800000000");
	agg_tally t;
	load("rb", &t);
	const agg_unit *u = unit_of(&t, "b11");
	int laggards = u->laggards;
	bool previous_ok = str_eq(t.previous, "ra");
	agg_tally_free(&t);
	if (laggards != 2)
		print_error("b11 was 后进 in 2 rounds; the tally says %d in a row\n", laggards);
	assert_true(previous_ok);
	assert_int_equal(laggards, 2);
}

/* ---- rules ---- */

static void same_rules(const agg_rules *a, const agg_rules *b)
{
	assert_memory_equal(&a->target, &b->target, sizeof a->target);
	assert_memory_equal(&a->veto, &b->veto, sizeof a->veto);
	assert_int_equal(a->min_valid, b->min_valid);
	assert_int_equal(a->k_scores, b->k_scores);
	assert_int_equal(a->k_comments, b->k_comments);
	assert_int_equal(a->n_grades, b->n_grades);
	for (size_t i = 0; i < a->n_grades; i++) {
		assert_string_equal(a->grades[i].name, b->grades[i].name);
		assert_memory_equal(&a->grades[i].min_rate, &b->grades[i].min_rate, sizeof(double));
		assert_memory_equal(&a->grades[i].min_score, &b->grades[i].min_score, sizeof(double));
	}
	assert_string_equal(a->fallback, b->fallback);
	assert_string_equal(a->ungraded, b->ungraded);
	assert_int_equal(a->rollup, b->rollup);
}

static void round_trip(const agg_rules *r)
{
	char *json = agg_rules_json(r);
	assert_non_null(json);
	agg_rules back;
	char err[256] = "";
	int rc = agg_rules_parse_json(json, &back, err, sizeof err);
	if (rc != 0)
		print_error("%s: %s\n", json, err);
	char *again = agg_rules_json(&back);
	bool same_text = strcmp(json, again) == 0;
	free(json);
	free(again);
	assert_int_equal(rc, 0);
	same_rules(r, &back);
	assert_true(same_text);
}

static void test_rules_round_trip(void **state)
{
	(void)state;
	agg_rules r;
	agg_rules_default(&r);
	assert_true(r.veto == 1.0 / 3.0);
	assert_int_equal(r.n_grades, 3);
	assert_string_equal(r.grades[0].name, "先进");
	round_trip(&r);

	r.target = 0.1 + 0.2;
	r.veto = 2.0 / 3.0;
	r.grades[0].min_score = 89.99999999999999;
	r.grades[1].min_rate = 0.9000000000000001;
	r.grades[2].min_rate = 5e-324;
	str_copy(r.grades[2].name, sizeof r.grades[2].name, "名\"称\\");
	str_copy(r.grades[r.n_grades].name, sizeof r.grades[0].name, "末等");
	r.grades[r.n_grades].min_rate = 0;
	r.grades[r.n_grades++].min_score = 0;
	r.min_valid = 3;
	r.k_scores = 7;
	r.k_comments = 12;
	r.rollup = AGG_MEAN;
	str_copy(r.fallback, sizeof r.fallback, "待改进");
	round_trip(&r);

	/* What a round stores when it is created reads back as the defaults. */
	create_round("r1", NULL);
	char *stored = db_text(db, "SELECT rules FROM rounds WHERE id = 'r1'", NULL);
	agg_rules back, dflt;
	char err[256] = "";
	int rc = agg_rules_parse_json(stored, &back, err, sizeof err);
	free(stored);
	assert_int_equal(rc, 0);
	agg_rules_default(&dflt);
	same_rules(&dflt, &back);
}

static void test_rules_parse_errors(void **state)
{
	(void)state;
	agg_rules r;
	agg_rules_default(&r);
	char *good = agg_rules_json(&r);
	char *extra = fmt_alloc("%s", good);
	extra[strlen(extra) - 1] = '\0';
	char *with_extra = fmt_alloc("%s,\"surprise\":1}", extra);
	char *cut = fmt_alloc("%s", good);
	cut[strlen(cut) / 2] = '\0';
	/* One grade more than a round can hold. */
	json_t *o = json_loads(good, 0, NULL);
	json_t *grades = json_object_get(o, "grades");
	while (json_array_size(grades) <= AGG_MAX_GRADES)
		json_array_append_new(grades, json_deep_copy(json_array_get(grades, 0)));
	char *too_many = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	const char *bad[] = { "", "null", "[]", "{}", cut, with_extra, too_many,
		"{\"target\":\"0.95\"}" };
	bool accepted = false;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		agg_rules out;
		char err[256] = "";
		if (agg_rules_parse_json(bad[i], &out, err, sizeof err) != -1 || !err[0]) {
			print_error("accepted: %s\n", bad[i]);
			accepted = true;
		}
	}
	free(good);
	free(extra);
	free(with_extra);
	free(cut);
	free(too_many);
	assert_false(accepted);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_figures_exact),
		T(test_grades_at_thresholds),
		T(test_veto),
		T(test_min_valid),
		T(test_rollup),
		T(test_scope),
		T(test_voter_groups),
		T(test_foreign_counters_ignored),
		T(test_per_question),
		T(test_unknown_round),
		T(test_json),
		T(test_json_question_order),
		T(test_csv),
		T(test_hidden_never_written),
		T(test_privacy_no_reveal_by_difference),
		T(test_trend_rounds_in_same_second),
		T(test_rules_round_trip),
		T(test_rules_parse_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
