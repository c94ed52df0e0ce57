/* test_intake.c - collector/intake.c on its own: every ballot that went into
 * the intake ends up in the store once, whatever rolls back, fails or stops
 * on the way, and the view ballots shows each one once meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aggregator/agg.h"
#include "collector/col.h"
#include "common/db.h"
#include "fixture.h"

static sqlite3 *db;

static int64_t count_of(const char *sql)
{
	return db_int(db, -1, sql, NULL);
}

static int setup(void **state)
{
	(void)state;
	static const fixture_unit units[] = {
		{ "party", NULL, "committee", NULL, NULL, "tkparty0" },
		{ "b1", "party", "branch", NULL, NULL, "tkb10000" },
		{ "b2", "party", "branch", NULL, NULL, "tkb20000" },
	};
	db = fixture_open(units, sizeof units / sizeof units[0]);
	if (!db)
		return -1;
	char err[512] = "";
	agg_round_spec spec = { .id = "r1", .series = "r1", .title_zh = "测评", .title_en = "Appraisal",
		.form_path = "forms/branch.form" };
	if (agg_round_create(db, &spec, err, sizeof err) != 0 || agg_round_open(db, "r1", err, sizeof err) != 0 ||
	    intake_open(db, err, sizeof err) != 0) {
		print_error("setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	intake_close();
	db_close(db);
	db = NULL;
	return 0;
}

/* One writer transaction of n ballots for unit, committed or rolled back;
 * then, as the writer does, a step of rows. */
static void batch(int n, const char *unit, size_t rows, bool commit)
{
	fixture_exec(db, "BEGIN");
	for (int i = 0; i < n; i++)
		assert_true(intake_add("r1", unit, "群众", "{\"overall\":\"s\"}"));
	fixture_exec(db, commit ? "COMMIT" : "ROLLBACK");
	intake_end(commit);
	if (rows)
		assert_true(intake_step(rows, false));
}

/* Idle steps until the intake is done with; each time the view must show
 * want ballots. Returns the steps it took. */
static int drain(size_t rows, int64_t want)
{
	int steps = 0;
	while (intake_busy()) {
		assert_true(intake_step(rows, true));
		assert_int_equal(count_of("SELECT count(*) FROM ballots"), want);
		assert_true(++steps < 10000);
	}
	return steps;
}

static void test_every_ballot_moves_once(void **state)
{
	(void)state;
	for (int i = 0; i < 10; i++)
		batch(100, i % 2 ? "b1" : "b2", 50, true);
	assert_int_equal(count_of("SELECT count(*) FROM ballots"), 1000);
	assert_true(drain(64, 1000) > 1);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 0);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 1000);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store WHERE unit = 'b1'"), 500);
}

/* A step commits its own statements: in a transaction someone else may
 * roll back, it would count as moved what never was, and delete it. */
static void test_a_step_inside_a_transaction_is_refused(void **state)
{
	(void)state;
	batch(300, "b1", 0, true);
	fixture_exec(db, "BEGIN");
	assert_false(intake_step(100, true));
	fixture_exec(db, "ROLLBACK");
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 0);
	drain(100, 300);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 300);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 0);
}

/* A rolled-back batch's seqs are free again and the next batch takes
 * them. Had they been counted, the first generation would hold them,
 * move nothing there, and delete the next batch's ballots unmoved. */
static void test_a_rolled_back_batch_is_forgotten(void **state)
{
	(void)state;
	batch(8, "b1", 0, true);
	batch(40, "b2", 0, false);                 /* these ballots never were */
	assert_true(intake_step(1000, true));      /* the generation, moved whole */
	batch(40, "b2", 0, true);                  /* the same seqs, real now */
	drain(1, 48);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 48);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 0);
}

static void test_a_restart_moves_what_was_left(void **state)
{
	(void)state;
	batch(500, "b1", 0, true);
	assert_true(intake_step(100, true));       /* 100 moved, none deleted yet */
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 100);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 500);
	assert_int_equal(count_of("SELECT count(*) FROM ballots"), 500);
	intake_close();                            /* as a crash would, all in memory lost */
	char err[256] = "";
	assert_int_equal(intake_open(db, err, sizeof err), 0);
	assert_true(intake_busy());
	drain(128, 500);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 500);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 0);
}

static void test_a_row_it_does_not_know_stays(void **state)
{
	(void)state;
	batch(200, "b1", 0, true);
	fixture_exec(db, "INSERT INTO ballot_intake(id, round, unit, grp, answers) "
		"VALUES (randomblob(16), 'r1', 'b2', '群众', '{}')");
	drain(64, 201);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake WHERE unit = 'b2'"), 1);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 200);
}

/* A move that fails (here: a unit dropped from the round under it) leaves
 * nothing behind, the next batch still commits, and the intake moves once
 * the cause is gone. */
static void test_a_failed_move_leaves_nothing(void **state)
{
	(void)state;
	batch(50, "b2", 0, true);
	fixture_exec(db, "PRAGMA foreign_keys = OFF");
	fixture_exec(db, "DELETE FROM round_units WHERE unit = 'b2'");
	fixture_exec(db, "PRAGMA foreign_keys = ON");
	assert_false(intake_step(100, true));
	batch(1, "b1", 0, true);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 0);
	assert_int_equal(count_of("SELECT count(*) FROM ballots"), 51);
	fixture_exec(db, "INSERT INTO round_units(round, unit) VALUES ('r1', 'b2')");
	drain(100, 51);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_store"), 51);
	assert_int_equal(count_of("SELECT count(*) FROM ballot_intake"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_ballot_moves_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_step_inside_a_transaction_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_rolled_back_batch_is_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_restart_moves_what_was_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_row_it_does_not_know_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_move_leaves_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
