/* test_writer.c - collector/writer.c's durability around the intake moves.
 *
 * A ballot is answered only once its batch is on disk (synchronous=FULL),
 * while the intake's moves commit without an fsync (NORMAL). The writer
 * switches between the two on one connection; a switch that did not come
 * back would answer ballots that a power cut could still take away, which
 * no kill -9 test can see. So this test counts the writer's fsyncs of the
 * WAL: its own fdatasync and fsync stand in for libc's (SQLite calls them
 * through the dynamic linker, and the program's own definitions come
 * first), count the calls on a "-wal" file and make the real system call.
 *
 * The loop thread is played by col_loop_answer below: it collects the
 * batches the writer hands over. One writer a process (its state is
 * static), so one test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/agg.h"
#include "collector/col.h"
#include "common/db.h"
#include "common/mem.h"
#include "common/str.h"
#include "fixture.h"

/* WAL fsyncs by thread: the checkpoint thread syncs the WAL too, when it
 * copies it back (after a second of quiet), and only the writer's count. */
static pthread_mutex_t syncs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pid_t tid;
	int n;
} syncs[16];

static void count_if_wal(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 4 || memcmp(path + n - 4, "-wal", 4) != 0)
		return;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	pthread_mutex_lock(&syncs_lock);
	size_t i = 0;
	while (i < 15 && syncs[i].tid && syncs[i].tid != tid)
		i++;
	syncs[i].tid = tid;
	syncs[i].n++;
	pthread_mutex_unlock(&syncs_lock);
}

int fdatasync(int fd)
{
	count_if_wal(fd);
	return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
	count_if_wal(fd);
	return (int)syscall(SYS_fsync, fd);
}

static pid_t writer_tid;   /* the thread that hands batches over */

static int writer_syncs(void)
{
	int n = 0;
	pthread_mutex_lock(&syncs_lock);
	for (size_t i = 0; i < 16; i++)
		if (syncs[i].tid && syncs[i].tid == writer_tid)
			n = syncs[i].n;
	pthread_mutex_unlock(&syncs_lock);
	return n;
}

/* ---- the loop thread's side ---- */

static pthread_mutex_t answers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t answers_came = PTHREAD_COND_INITIALIZER;
static col_jobs answers;

void col_loop_answer(col_jobs batch)
{
	pthread_mutex_lock(&answers_lock);
	writer_tid = (pid_t)syscall(SYS_gettid);
	col_jobs_append(&answers, batch);
	pthread_cond_broadcast(&answers_came);
	pthread_mutex_unlock(&answers_lock);
}

/* Queue one poster ballot for b1 and wait for its answer (5 s at most). */
static enum col_result submit_ballot(void)
{
	col_job *job = xcalloc(1, sizeof *job);
	str_copy(job->round, sizeof job->round, "r1");
	str_copy(job->unit, sizeof job->unit, "b1");
	str_copy(job->grp, sizeof job->grp, "群众");
	job->n_answers = 1;
	str_copy(job->question[0], FORM_NAME_MAX, "overall");
	str_copy(job->level[0], FORM_NAME_MAX, "s");
	job->answers_json = xstrdup("{\"overall\":\"s\"}");
	assert_true(col_writer_admit());
	col_writer_submit(job);

	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&answers_lock);
	while (!answers.head && pthread_cond_timedwait(&answers_came, &answers_lock, &until) == 0)
		;
	col_jobs got = col_jobs_take(&answers);
	pthread_mutex_unlock(&answers_lock);
	assert_ptr_equal(got.head, job);
	enum col_result r = job->result;
	col_writer_answered();
	col_job_free(job);
	return r;
}

static int64_t count_of(sqlite3 *db, const char *sql)
{
	return db_int(db, -1, sql, NULL);
}

/* Wait (10 s at most) until the intake is empty: the writer, idle, has
 * moved everything into the store. */
static void wait_for_moves(sqlite3 *reader)
{
	for (int i = 0; i < 1000 && count_of(reader, "SELECT count(*) FROM ballot_intake") != 0; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000L }, NULL);
	assert_int_equal(count_of(reader, "SELECT count(*) FROM ballot_intake"), 0);
}

static void make_database(const char *path)
{
	static const fixture_unit b1 = { "b1", NULL, "branch", NULL, NULL, "tkb10000" };
	sqlite3 *db = fixture_open_at(path, &b1, 1);
	assert_non_null(db);
	char err[512] = "";
	agg_round_spec spec = { .id = "r1", .series = "r1", .title_zh = "测评", .title_en = "Appraisal",
		.form_path = "forms/branch.form" };
	if (agg_round_create(db, &spec, err, sizeof err) != 0 || agg_round_open(db, "r1", err, sizeof err) != 0)
		print_error("%s\n", err);
	assert_int_equal(count_of(db, "SELECT count(*) FROM rounds WHERE state = 'open'"), 1);
	db_close(db);
}

static void test_a_ballot_after_a_move_is_fsynced(void **state)
{
	(void)state;
	char dir[] = "/tmp/pingyi-test-writer-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/t.db", dir);
	make_database(path);
	char err[512] = "";
	if (col_writer_start(path, err, sizeof err) != 0)
		print_error("%s\n", err);
	assert_string_equal(err, "");
	sqlite3 *reader = db_open(path, DB_READONLY, err, sizeof err);
	assert_non_null(reader);

	assert_int_equal(submit_ballot(), COL_STORED);
	int answered = writer_syncs();
	assert_true(answered >= 1);              /* answered once on disk */
	wait_for_moves(reader);
	assert_int_equal(count_of(reader, "SELECT count(*) FROM ballot_store"), 1);
	/* the moves: no fsync (but for a WAL header, should checkpoint.c have
	 * emptied the WAL after a second of quiet before they ran: they run
	 * ~50 ms after the answer) */
	int moved = writer_syncs();
	assert_int_equal(moved, answered);

	assert_int_equal(submit_ballot(), COL_STORED);
	assert_true(writer_syncs() > moved);     /* synchronous=FULL again after them */
	wait_for_moves(reader);
	assert_int_equal(count_of(reader, "SELECT count(*) FROM ballot_store"), 2);
	assert_int_equal(count_of(reader, "SELECT n FROM ballot_counts WHERE unit = 'b1'"), 2);

	db_close(reader);
	assert_true(col_writer_drain(1000));
	col_writer_stop();
	char rm[160];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	assert_int_equal(system(rm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_ballot_after_a_move_is_fsynced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
