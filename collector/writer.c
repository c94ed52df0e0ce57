/* writer.c - the one writer thread: ballots committed in batches.
 *
 * Handlers queue ballots and suspend their connections. The writer takes
 * everything queued, commits it in one synchronous=FULL transaction (each
 * ballot under its own savepoint, with its counters), and only then resumes
 * the connections, which answer. While one batch waits for fsync the next
 * one queues up, so durability and throughput do not fight (group commit;
 * DESIGN.md §5 has the measurements). */
#include "col.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/log.h"
#include "common/rnd.h"
#include "common/schema.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static col_job *queue_head, *queue_tail;
static bool stopping, draining;
static int in_flight;       /* admitted and not yet answered */
static pthread_t thread;
static sqlite3 *db;

/* Statements prepared once and re-bound for every ballot. */
static sqlite3_stmt *st_state, *st_spend, *st_ballot, *st_count, *st_ballots, *st_comment;

void col_job_free(col_job *job)
{
	free(job->answers_json);
	free(job->comment);
	free(job);
}

void col_writer_submit(col_job *job)
{
	job->next = NULL;
	job->result = COL_PENDING;
	pthread_mutex_lock(&lock);
	if (queue_tail)
		queue_tail->next = job;
	else
		queue_head = job;
	queue_tail = job;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

bool col_writer_admit(void)
{
	pthread_mutex_lock(&lock);
	bool ok = !draining;
	in_flight += ok;
	pthread_mutex_unlock(&lock);
	return ok;
}

void col_writer_answered(void)
{
	pthread_mutex_lock(&lock);
	in_flight--;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

bool col_writer_drain(int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lock);
	draining = true;
	int rc = 0;
	while (in_flight > 0 && rc == 0)
		rc = pthread_cond_timedwait(&wake, &lock, &until);
	bool done = in_flight == 0;
	pthread_mutex_unlock(&lock);
	return done;
}

static bool run(sqlite3_stmt *st)
{
	return db_step(st) == SQLITE_DONE;
}

/* Store one ballot; the caller holds the transaction. */
static enum col_result store(col_job *job)
{
	db_rebind(st_state, "t", job->round);
	bool open = db_step(st_state) == SQLITE_ROW && strcmp(db_col_text(st_state, 0), "open") == 0;
	sqlite3_reset(st_state);
	if (!open)
		return COL_ROUND_CLOSED;
	if (job->by_code) {
		/* The primary key makes a code rate a unit once, however many
		 * requests race: the second insert changes nothing. */
		db_rebind(st_spend, "bt", job->code_hash, sizeof job->code_hash, job->unit);
		if (!run(st_spend))
			return COL_FAILED;
		if (sqlite3_changes(db) == 0)
			return COL_CODE_SPENT;
	}
	unsigned char id[16];
	rnd_bytes(id, sizeof id);
	db_rebind(st_ballot, "btttt", id, sizeof id, job->round, job->unit, job->grp, job->answers_json);
	if (!run(st_ballot))
		return COL_FAILED;
	for (size_t i = 0; i < job->n_answers; i++) {
		db_rebind(st_count, "ttttt", job->round, job->unit, job->grp, job->question[i], job->level[i]);
		if (!run(st_count))
			return COL_FAILED;
	}
	db_rebind(st_ballots, "ttt", job->round, job->unit, job->grp);
	if (!run(st_ballots))
		return COL_FAILED;
	if (job->comment) {
		rnd_bytes(id, sizeof id);
		db_rebind(st_comment, "bttti", id, sizeof id, job->round, job->unit, job->comment,
			job->complaint ? 1 : 0);
		if (!run(st_comment))
			return COL_FAILED;
	}
	return COL_STORED;
}

static void commit_batch(col_job *batch)
{
	int rc = db_begin(db);
	for (col_job *j = batch; j; j = j->next) {
		if (rc != SQLITE_OK) {
			j->result = COL_FAILED;
			continue;
		}
		sqlite3_exec(db, "SAVEPOINT ballot", NULL, NULL, NULL);
		j->result = store(j);
		if (j->result != COL_STORED)
			sqlite3_exec(db, "ROLLBACK TO ballot", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE ballot", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK || (rc = db_commit(db)) != SQLITE_OK) {
		log_error("cannot commit %s ballots: %s", batch->next ? "a batch of" : "one of the",
			sqlite3_errmsg(db));
		if (!sqlite3_get_autocommit(db))
			db_rollback(db);
		for (col_job *j = batch; j; j = j->next)
			if (j->result == COL_STORED)
				j->result = COL_FAILED;
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while (!queue_head && !stopping)
			pthread_cond_wait(&wake, &lock);
		col_job *batch = queue_head;
		queue_head = queue_tail = NULL;
		bool stop = stopping && !batch;
		pthread_mutex_unlock(&lock);
		if (stop)
			return NULL;
		commit_batch(batch);
		/* Resuming hands the job back to its connection's handler, which
		 * answers and frees it: do not touch j after the resume. */
		for (col_job *j = batch, *next; j; j = next) {
			next = j->next;
			MHD_resume_connection(j->conn);
		}
	}
}

int col_writer_start(const char *path, char *err, size_t errsize)
{
	db = schema_open(path, DB_READWRITE, err, errsize);
	if (!db)
		return -1;
	st_state = db_prepare(db, "SELECT state FROM rounds WHERE id = ?", NULL);
	st_spend = db_prepare(db, "INSERT INTO code_uses(hash, unit) VALUES (?, ?) ON CONFLICT DO NOTHING", NULL);
	st_ballot = db_prepare(db, "INSERT INTO ballots(id, round, unit, grp, answers) "
		"VALUES (?, ?, ?, ?, ?)", NULL);
	st_count = db_prepare(db, "INSERT INTO counts(round, unit, grp, question, level, n) "
		"VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1", NULL);
	st_ballots = db_prepare(db, "INSERT INTO ballot_counts(round, unit, grp, n) VALUES (?, ?, ?, 1) "
		"ON CONFLICT DO UPDATE SET n = n + 1", NULL);
	st_comment = db_prepare(db, "INSERT INTO comments(id, round, unit, body, complaint) "
		"VALUES (?, ?, ?, ?, ?)", NULL);
	if (pthread_create(&thread, NULL, writer_main, NULL) != 0) {
		fmt_into(err, errsize, "cannot start the writer thread");
		return -1;
	}
	return 0;
}

void col_writer_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	db_finalize(st_state);
	db_finalize(st_spend);
	db_finalize(st_ballot);
	db_finalize(st_count);
	db_finalize(st_ballots);
	db_finalize(st_comment);
	db_close(db);
}
