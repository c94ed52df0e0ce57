/* writer.c - the one writer thread: ballots committed in batches.
 *
 * Handlers queue ballots and suspend their connections. The writer takes
 * everything queued, commits it in one synchronous=FULL transaction (a
 * ballot that writes more than one row under its own savepoint; the batch's
 * counters summed in memory and written once each), and only then hands
 * the batch to the loop thread (loop.c), which resumes the connections:
 * they answer. While one batch waits for fsync the next one queues up, so
 * durability and throughput do not fight (group commit; DESIGN.md §5 has
 * the measurements). A ballot goes into the intake (intake.c), which moves
 * on a slice at a time, outside the batch's transaction, after each batch
 * is answered and when no ballot comes. Copying the WAL back into the
 * database is checkpoint.c's job, not this thread's. */
#include "col.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/str.h"
#include "common/rnd.h"
#include "common/schema.h"

enum {
	IDLE_MS = 50,        /* no ballot for this long: the writer is idle */
	IDLE_SLICE = 4096,   /* intake rows moved per step when idle */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static col_jobs queue;
static bool stopping, writer_asleep;
static atomic_bool draining;
static atomic_int in_flight;       /* admitted and not yet answered */
static pthread_t thread;
static sqlite3 *db;

/* Statements prepared once and re-bound for every ballot. */
static sqlite3_stmt *st_state, *st_spend, *st_count, *st_ballots, *st_comment;
static sqlite3_stmt *st_savepoint, *st_release, *st_rollback_to;
static bool durable = true;        /* commits are synchronous=FULL */

/* A batch's counters, summed in memory and written once per batch: a
 * counter row is updated once however many of the batch's ballots touch it.
 * Keys are "round\x1funit\x1fgroup\x1fquestion\x1flevel" (question and level
 * empty for the ballot count). Open addressing; the table is sized for the
 * batch. A key is at most a job's round, unit, group, question and level,
 * each with a separator or the NUL in place of its own NUL. */
#define JOB_FIELD(f) sizeof(((col_job *)0)->f)
enum { COUNTER_KEY_MAX = JOB_FIELD(round) + JOB_FIELD(unit) + JOB_FIELD(grp) + 2 * FORM_NAME_MAX };

typedef struct tally_entry {
	char *key;
	int64_t n;
} tally_entry;

typedef struct batch_tally {
	tally_entry *slots;
	size_t cap, used;
} batch_tally;

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Count one for the key made of parts (joined by \x1f): the key is copied
 * only the first time a batch sees it. */
static void tally_add(batch_tally *bt, const char *const parts[5])
{
	char key[COUNTER_KEY_MAX];
	size_t len = 0;
	for (int i = 0; i < 5; i++) {
		size_t n = strlen(parts[i]);
		memcpy(key + len, parts[i], n);
		len += n;
		key[len++] = i < 4 ? '\x1f' : '\0';
	}
	if (2 * (bt->used + 1) > bt->cap) {
		batch_tally bigger = { xcalloc(bt->cap ? 2 * bt->cap : 256, sizeof *bigger.slots),
			bt->cap ? 2 * bt->cap : 256, 0 };
		for (size_t i = 0; i < bt->cap; i++)
			if (bt->slots[i].key) {
				size_t j = hash_key(bt->slots[i].key) & (bigger.cap - 1);
				while (bigger.slots[j].key)
					j = (j + 1) & (bigger.cap - 1);
				bigger.slots[j] = bt->slots[i];
				bigger.used++;
			}
		free(bt->slots);
		*bt = bigger;
	}
	size_t j = hash_key(key) & (bt->cap - 1);
	while (bt->slots[j].key && strcmp(bt->slots[j].key, key) != 0)
		j = (j + 1) & (bt->cap - 1);
	if (!bt->slots[j].key) {
		bt->slots[j].key = xstrdup(key);
		bt->used++;
	}
	bt->slots[j].n++;
}

/* Write the batch's counters; false on a database error. */
static bool tally_write(batch_tally *bt)
{
	bool ok = true;
	for (size_t i = 0; i < bt->cap; i++) {
		char *k = bt->slots[i].key;
		if (!k)
			continue;
		char *f[5] = { k, NULL, NULL, NULL, NULL };
		for (int n = 1; n < 5 && (f[n] = strchr(f[n - 1], '\x1f')) != NULL; n++)
			*f[n]++ = '\0';
		if (ok && f[3] && f[3][0]) {
			db_rebind(st_count, "tttttI", f[0], f[1], f[2], f[3], f[4], bt->slots[i].n);
			ok = db_step(st_count) == SQLITE_DONE;
		} else if (ok) {
			db_rebind(st_ballots, "tttI", f[0], f[1], f[2], bt->slots[i].n);
			ok = db_step(st_ballots) == SQLITE_DONE;
		}
		free(k);
	}
	free(bt->slots);
	memset(bt, 0, sizeof *bt);
	return ok;
}

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
	col_jobs_append(&queue, (col_jobs){ job, job });
	if (writer_asleep)   /* while it commits, the queue just grows */
		pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
}

/* Admission is counted without the lock: it is on every ballot's path, and
 * the writer holds the lock while it takes a batch. A ballot counts itself
 * in, then looks at draining; the drain sets draining, then waits for the
 * count: whichever comes first, no ballot slips past a drain unanswered. */
bool col_writer_admit(void)
{
	atomic_fetch_add(&in_flight, 1);
	if (atomic_load(&draining)) {
		atomic_fetch_sub(&in_flight, 1);
		return false;
	}
	return true;
}

void col_writer_answered(void)
{
	atomic_fetch_sub(&in_flight, 1);
}

/* From now on the writer takes no further batch. */
static void take_no_more(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
}

bool col_writer_drain(int timeout_ms)
{
	atomic_store(&draining, true);
	/* Shutdown only: polling every 10 ms keeps the ballot path free of it. */
	int64_t deadline = clock_ms() + timeout_ms;
	while (atomic_load(&in_flight) > 0 && clock_ms() < deadline)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000L }, NULL);
	if (atomic_load(&in_flight) == 0)
		return true;
	/* Given up, the answers may stop any moment: a batch taken from here
	 * on could be stored unanswered, and sent again. */
	take_no_more();
	return false;
}

static bool run(sqlite3_stmt *st)
{
	return db_step(st) == SQLITE_DONE;
}

/* Is the round open? Asked once per round per batch (rounds per batch are
 * few: a linear list will do). */
typedef struct round_states {
	char round[8][72];
	bool open[8];
	int n;
} round_states;

/* The round's state as the batch sees it; ROUND_UNKNOWN (not remembered)
 * when the database could not say. */
enum round_state { ROUND_OPEN, ROUND_SHUT, ROUND_UNKNOWN };

static enum round_state round_state(round_states *rs, const char *round)
{
	for (int i = 0; i < rs->n; i++)
		if (strcmp(rs->round[i], round) == 0)
			return rs->open[i] ? ROUND_OPEN : ROUND_SHUT;
	db_rebind(st_state, "t", round);
	int rc = db_step(st_state);
	bool open = rc == SQLITE_ROW && strcmp(db_col_text(st_state, 0), "open") == 0;
	sqlite3_reset(st_state);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ROUND_UNKNOWN;
	if (rs->n < 8) {
		str_copy(rs->round[rs->n], sizeof rs->round[0], round);
		rs->open[rs->n++] = open;
	}
	return open ? ROUND_OPEN : ROUND_SHUT;
}

/* Store one ballot; the caller holds the transaction and writes the
 * counters it adds to bt once the batch is done. */
static enum col_result store(col_job *job, round_states *rs, batch_tally *bt)
{
	switch (round_state(rs, job->round)) {
	case ROUND_OPEN: break;
	case ROUND_SHUT: return COL_ROUND_CLOSED;
	case ROUND_UNKNOWN: return COL_FAILED;
	}
	if (job->by_code) {
		/* The primary key makes a code rate a unit once, however many
		 * requests race: the second insert changes nothing. */
		db_rebind(st_spend, "bt", job->code_hash, sizeof job->code_hash, job->unit);
		if (!run(st_spend))
			return COL_FAILED;
		if (sqlite3_changes(db) == 0)
			return COL_CODE_SPENT;
	}
	if (job->comment) {
		unsigned char id[16];
		rnd_bytes(id, sizeof id);
		db_rebind(st_comment, "bttti", id, sizeof id, job->round, job->unit, job->comment,
			job->complaint ? 1 : 0);
		if (!run(st_comment))
			return COL_FAILED;
	}
	/* Last: once it is in the intake, the ballot is stored. */
	if (!intake_add(job->round, job->unit, job->grp, job->answers_json))
		return COL_FAILED;
	for (size_t i = 0; i < job->n_answers; i++)
		tally_add(bt, (const char *const[]){ job->round, job->unit, job->grp, job->question[i], job->level[i] });
	tally_add(bt, (const char *const[]){ job->round, job->unit, job->grp, "", "" });
	return COL_STORED;
}

static void step_reset(sqlite3_stmt *st)
{
	db_step(st);
	sqlite3_reset(st);
}

/* Store one ballot so that, should it fail, it leaves nothing behind: its
 * rows are rolled back, and its counters were never added. A poster ballot
 * with no comment writes one row, in one statement, which SQLite undoes by
 * itself: it needs no savepoint (two statements a ballot fewer). */
static enum col_result store_whole(col_job *job, round_states *rs, batch_tally *bt)
{
	if (!job->by_code && !job->comment)
		return store(job, rs, bt);
	step_reset(st_savepoint);
	enum col_result r = store(job, rs, bt);
	if (r != COL_STORED)
		step_reset(st_rollback_to);
	step_reset(st_release);
	return r;
}

/* Switch the connection's commits between synchronous=FULL (durable: an
 * fsync each) and NORMAL. False (logged) if the switch failed. Compiled
 * each time: SQLite applies this pragma when it compiles it, so a prepared
 * one stepped again took effect only when SQLite happened to recompile it
 * (the first move after a start committed with an fsync; test_writer). */
static bool set_durable(bool on)
{
	bool ok = sqlite3_exec(db, on ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
		NULL, NULL, NULL) == SQLITE_OK;
	if (ok)
		durable = on;
	else
		log_error("cannot set synchronous=%s: %s", on ? "FULL" : "NORMAL", sqlite3_errmsg(db));
	return ok;
}

/* Commit the batch; returns how many ballots it held. */
static size_t commit_batch(col_job *batch)
{
	/* A ballot is answered only once it is on disk. */
	int rc = durable || set_durable(true) ? db_begin(db) : SQLITE_ERROR;
	round_states rs = { .n = 0 };
	batch_tally bt = { 0 };
	size_t n = 0;
	for (col_job *j = batch; j; j = j->next, n++) {
		if (rc != SQLITE_OK) {
			j->result = COL_FAILED;
			continue;
		}
		j->result = store_whole(j, &rs, &bt);
		/* A full disk or an I/O error makes SQLite roll the whole
		 * transaction back: the ballots after this one would each commit
		 * alone (a lone insert, or a SAVEPOINT's RELEASE). */
		if (sqlite3_get_autocommit(db)) {
			j->result = COL_FAILED;
			rc = SQLITE_ABORT;
		}
	}
	if (rc == SQLITE_OK && !tally_write(&bt))
		rc = SQLITE_ERROR;
	if (rc != SQLITE_OK || (rc = db_commit(db)) != SQLITE_OK) {
		log_error("cannot commit %s ballots: %s", batch->next ? "a batch of" : "one of the",
			sqlite3_errmsg(db));
		if (!sqlite3_get_autocommit(db))
			db_rollback(db);
		for (col_job *j = batch; j; j = j->next)
			if (j->result == COL_STORED)
				j->result = COL_FAILED;
	}
	intake_end(rc == SQLITE_OK);
	return n;
}

/* Move a slice of the intake on, outside any transaction (after a batch,
 * when idle, when stopping). False if that failed.
 *
 * Its statements commit without an fsync (synchronous=NORMAL): should a
 * crash lose a move, its rows are still in the intake and move again (the
 * store ignores a key it has), and a delete never outlives the move it
 * follows (intake.c). The next batch's fsync makes them durable. */
static bool move_intake(size_t rows, bool idle)
{
	if (!set_durable(false))
		return false;
	bool ok = intake_step(rows, idle);
	set_durable(true);   /* if this fails, the next batch tries again first */
	return ok;
}

/* Wait for the next batch. Once no ballot has come for IDLE_MS, the
 * writer moves the intake on while it waits. None: stop. What is still
 * queued then stays unwritten: after a drain nothing is, unless the drain
 * gave up. */
static col_jobs next_batch(void)
{
	bool quiet = false;
	pthread_mutex_lock(&lock);
	while (!queue.head && !stopping) {
		if (quiet && intake_busy()) {
			pthread_mutex_unlock(&lock);
			quiet = move_intake(IDLE_SLICE, true);   /* false: wait IDLE_MS, then again */
			pthread_mutex_lock(&lock);
			continue;
		}
		writer_asleep = true;
		if (intake_busy()) {
			struct timespec until = clock_deadline(IDLE_MS);
			quiet = pthread_cond_timedwait(&wake, &lock, &until) == ETIMEDOUT;
		} else {
			pthread_cond_wait(&wake, &lock);
		}
		writer_asleep = false;
	}
	col_jobs batch = stopping ? (col_jobs){ NULL, NULL } : col_jobs_take(&queue);
	pthread_mutex_unlock(&lock);
	return batch;
}

static void *writer_main(void *arg)
{
	(void)arg;
	col_jobs batch;
	while ((batch = next_batch()).head) {
		size_t n = commit_batch(batch.head);
		col_loop_answer(batch);
		col_checkpoint_pause_point();
		/* Then the intake moves on: a batch's worth and a little more, so
		 * it keeps up. In the batch's own transaction, the batch's raters
		 * waited for the move too (writer-side p50 3.8 ms; now 2.0). */
		if (intake_due())
			move_intake(n + 128, false);
	}
	/* Stopping: leave no ballot in arrival order behind. */
	while (intake_busy() && move_intake(IDLE_SLICE, true))
		;
	return NULL;
}

int col_writer_start(const char *path, char *err, size_t errsize)
{
	clock_cond_init(&wake);
	db = schema_open(path, DB_READWRITE, err, errsize);
	if (!db)
		return -1;
	/* An 8 MB page cache (SQLite's default is 2 MB) holds the intake's end,
	 * the counters and the store's inner pages; the store's leaves are
	 * visited in key order. 16 MB measured no faster, and the collector's
	 * memory is bounded (bench/README.md). Temp files in memory: the
	 * per-ballot savepoints' statement journal spilled into one, some 50
	 * page writes a commit. */
	if (sqlite3_exec(db, "PRAGMA cache_size=-8000; PRAGMA temp_store=MEMORY", NULL, NULL, NULL) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot set up the writer's connection: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (col_checkpoints_start(path, db, err, errsize) != 0 || intake_open(db, err, errsize) != 0)
		return -1;
	st_state = db_prepare(db, "SELECT state FROM rounds WHERE id = ?", NULL);
	st_spend = db_prepare(db, "INSERT INTO code_uses(hash, unit) VALUES (?, ?) ON CONFLICT DO NOTHING", NULL);
	st_count = db_prepare(db, "INSERT INTO counts(round, unit, grp, question, level, n) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET n = n + ?6", NULL);
	st_ballots = db_prepare(db, "INSERT INTO ballot_counts(round, unit, grp, n) VALUES (?1, ?2, ?3, ?4) "
		"ON CONFLICT DO UPDATE SET n = n + ?4", NULL);
	st_savepoint = db_prepare(db, "SAVEPOINT ballot", NULL);
	st_release = db_prepare(db, "RELEASE ballot", NULL);
	st_rollback_to = db_prepare(db, "ROLLBACK TO ballot", NULL);
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
	take_no_more();
	pthread_join(thread, NULL);
	intake_close();
	col_checkpoints_stop();
	db_finalize(st_state);
	db_finalize(st_spend);
	db_finalize(st_count);
	db_finalize(st_ballots);
	db_finalize(st_comment);
	db_finalize(st_savepoint);
	db_finalize(st_release);
	db_finalize(st_rollback_to);
	db_close(db);
}
