/* checkpoint.c - WAL checkpoints on their own thread, off the writer's path.
 *
 * Ballot keys are random (docs/anonymity.md), so the pages ballots move
 * into are spread over the whole store (intake.c). SQLite's default copies
 * the WAL back into the database from inside a commit every 1,000 frames: a
 * random write of each page and an fsync, 10-20 ms during which no batch
 * commits and every waiting rater waits. Here the writer's
 * connection never checkpoints. This thread, on its own connection, does:
 *
 *   under load   once the WAL holds CHECKPOINT_FRAMES, PASSIVE checkpoints
 *                copy it back beside the writer's commits (a page written
 *                by many batches is copied once), each pass ending with an
 *                fsync of what it wrote. They repeat while each copies less
 *                than the one before; then the writer is asked to pause
 *                after its next commit, and RESTART copies that commit,
 *                syncs it and rewinds the WAL: a pause of a few ms instead
 *                of a full checkpoint's. (Without the pause, RESTART waited
 *                for a gap between the writer's transactions while hundreds
 *                of frames piled up, then copied them with the writer held
 *                off: 20-40 ms. Without the passes' own fsyncs, RESTART's
 *                flushed their thousands of random writes: 25-30 ms.)
 *   when idle    IDLE_MS after the last commit, the same, ending with
 *                TRUNCATE: the WAL file is emptied. It holds pages in commit
 *                order, so it must not keep a quiet day's ballots in the
 *                order they came (docs/anonymity.md).
 *
 * RESTART and TRUNCATE hold the writer off while they wait for readers to
 * leave the WAL. A long reader (a recount, an export, a backup) would make
 * that wait long, so they are not started while the passes leave frames
 * behind (the reader holds them), give up after WAIT_MAX_MS, and are not
 * tried again for RETRY_MS: the ballots keep flowing and the WAL grows
 * meanwhile, as it would under SQLite's own checkpoints, until the reader
 * is done. */
#include "col.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/clock.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/log.h"
#include "common/schema.h"

enum {
	/* ~24 MB of WAL starts a checkpoint. Longer WALs copy a page written
	 * by several batches once, but each pass ends with an fsync of all the
	 * random writes it made, and a commit's fsync of the WAL waits behind
	 * it on the disk. At 10,000 frames, 4 of ~35 runs of make bench's
	 * 500-connection load stalled every ballot for seconds; at 6,000, none
	 * of 8, at about the same rate. (That was when every ballot wrote a
	 * page; since the intake, 6,000 frames hold about a second of a rush.) */
	CHECKPOINT_FRAMES = 6000,
	TAIL_FRAMES = 500,          /* a pass that copies no more is the last before the pause */
	MAX_PASSES = 6,
	IDLE_MS = 1000,
	WAIT_MAX_MS = 20,
	RETRY_MS = 1000,
};

static pthread_t thread;
static sqlite3 *db;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static bool due, stopping;
static pthread_cond_t pause_done;
static atomic_bool pause_wanted;    /* the writer should wait at its pause point */
static bool writer_paused;          /* under lock */
static uint64_t commits;            /* by the writer, under lock */
static int64_t retry_at;            /* after a checkpoint gave up: not before this */

/* Both connections wait for locks in steps of 100 µs rather than SQLite's
 * default sleeps (1, 2, 5, 10 ms ...): a waiting rater should not sleep
 * through the moment the lock comes free. The writer waits up to 5 s (as
 * busy_timeout did), this thread up to WAIT_MAX_MS. arg: the limit in ms. */
static int busy_wait(void *arg, int tries)
{
	static _Thread_local int64_t since;
	if (tries == 0)
		since = clock_ms();
	if (clock_ms() - since >= (int64_t)(intptr_t)arg)
		return 0;
	nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000L }, NULL);
	return 1;
}

/* The writer's WAL hook, after each commit: frames is the WAL's length. */
static int on_commit(void *arg, sqlite3 *writer, const char *name, int frames)
{
	(void)arg;
	(void)writer;
	(void)name;
	pthread_mutex_lock(&lock);
	commits++;
	if (frames >= CHECKPOINT_FRAMES && !due) {
		due = true;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	return SQLITE_OK;
}

/* One checkpoint call; false when it did not finish. SQLITE_BUSY (a reader
 * in the way, or another program checkpointing) is not an error: it is
 * tried again after RETRY_MS. */
static bool checkpoint_call(int mode, int *log, int *done)
{
	if (sqlite3_wal_checkpoint_v2(db, NULL, mode, log, done) == SQLITE_OK)
		return true;
	if (sqlite3_errcode(db) == SQLITE_BUSY)
		retry_at = clock_ms() + RETRY_MS;
	else
		log_error("checkpoint: %s", sqlite3_errmsg(db));
	return false;
}

void col_checkpoint_pause_point(void)
{
	if (!atomic_load_explicit(&pause_wanted, memory_order_relaxed))
		return;
	pthread_mutex_lock(&lock);
	writer_paused = true;
	pthread_cond_broadcast(&pause_done);
	while (atomic_load(&pause_wanted))
		pthread_cond_wait(&pause_done, &lock);
	writer_paused = false;
	pthread_mutex_unlock(&lock);
}

/* Ask the writer to pause at its next pause point, and wait up to
 * WAIT_MAX_MS for it (an idle writer never gets there: it holds no lock). */
static void pause_writer(void)
{
	atomic_store(&pause_wanted, true);
	struct timespec until = clock_deadline(WAIT_MAX_MS);
	pthread_mutex_lock(&lock);
	int rc = 0;
	while (!writer_paused && rc == 0)
		rc = pthread_cond_timedwait(&pause_done, &lock, &until);
	pthread_mutex_unlock(&lock);
}

static void resume_writer(void)
{
	pthread_mutex_lock(&lock);
	atomic_store(&pause_wanted, false);
	pthread_cond_broadcast(&pause_done);
	pthread_mutex_unlock(&lock);
}

/* Flush what the PASSIVE passes wrote to the database file. A pass that
 * ends short of the WAL's end (the writer committed meanwhile) leaves its
 * writes in the page cache; the finishing RESTART or TRUNCATE would fsync
 * them all while it holds the writer off. */
static void sync_database(void)
{
	sqlite3_file *f = NULL;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f || !f->pMethods)
		return;
	int rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK)
		log_error("checkpoint: cannot sync the database file (SQLite error %d)", rc);
}

/* Copy the WAL back; finish with mode (RESTART or TRUNCATE) once the tail
 * is short. True when it finished. */
static bool checkpoint(int mode)
{
	int log = 0, done = 0, copied = -1;
	if (clock_ms() < retry_at)
		return false;
	/* A pass copies what came while the one before copied and synced;
	 * once that is little, the pause will be short too, unless a pass
	 * leaves much behind. */
	for (int pass = 0; pass < MAX_PASSES; pass++) {
		int before = done;
		if (!checkpoint_call(SQLITE_CHECKPOINT_PASSIVE, &log, &done))
			return false;
		sync_database();
		bool shrinking = copied < 0 || done - before < copied;
		copied = done - before;
		if (copied <= TAIL_FRAMES || !shrinking)
			break;
	}
	/* Frames left behind by a pass that copied little: a reader (an
	 * export, a backup) holds them, and RESTART would wait WAIT_MAX_MS for
	 * it with the writer held, then give up, or copy them all if it left. */
	if (log - done > TAIL_FRAMES)
		retry_at = clock_ms() + RETRY_MS;
	if (copied > TAIL_FRAMES || log - done > TAIL_FRAMES)
		return false;
	/* Idle (TRUNCATE), the writer commits nothing and never gets to a pause
	 * point: no need to ask. */
	if (mode == SQLITE_CHECKPOINT_TRUNCATE)
		return checkpoint_call(mode, &log, &done);
	pause_writer();
	bool ok = checkpoint_call(mode, &log, &done);
	if (ok) {
		/* The commits made during the passes asked for this checkpoint
		 * again: without this, a second one (and a second pause) followed
		 * at once, with nothing to copy. */
		pthread_mutex_lock(&lock);
		due = false;
		pthread_mutex_unlock(&lock);
	}
	resume_writer();
	return ok;
}

/* Wait up to IDLE_MS for a checkpoint to be due; *mode is the one to run
 * (RESTART under load, TRUNCATE when idle) or NO_CHECKPOINT, and *at the
 * commit count it covers. truncated: the count the last finished TRUNCATE
 * covered. False: stop. */
enum { NO_CHECKPOINT = -1 };

static bool next_checkpoint(uint64_t truncated, int *mode, uint64_t *at)
{
	pthread_mutex_lock(&lock);
	uint64_t seen = commits;
	struct timespec until = clock_deadline(IDLE_MS);
	int rc = 0;
	while (!due && !stopping && rc == 0)
		rc = pthread_cond_timedwait(&wake, &lock, &until);
	bool idle = commits == seen && commits != truncated;
	*mode = due ? SQLITE_CHECKPOINT_RESTART : idle ? SQLITE_CHECKPOINT_TRUNCATE : NO_CHECKPOINT;
	*at = commits;
	due = false;
	bool go_on = !stopping;
	pthread_mutex_unlock(&lock);
	return go_on;
}

static void *checkpoint_main(void *arg)
{
	(void)arg;
	/* Not 0: a WAL left by a crash is emptied too, before the first ballot. */
	uint64_t truncated = UINT64_MAX, at;
	int mode;
	while (next_checkpoint(truncated, &mode, &at))
		if (mode != NO_CHECKPOINT && checkpoint(mode) && mode == SQLITE_CHECKPOINT_TRUNCATE)
			truncated = at;
	return NULL;
}

int col_checkpoints_start(const char *path, sqlite3 *writer, char *err, size_t errsize)
{
	clock_cond_init(&wake);
	clock_cond_init(&pause_done);
	db = schema_open(path, DB_READWRITE, err, errsize);
	if (!db)
		return -1;
	sqlite3_busy_handler(db, busy_wait, (void *)(intptr_t)WAIT_MAX_MS);
	sqlite3_busy_handler(writer, busy_wait, (void *)(intptr_t)5000);
	sqlite3_wal_autocheckpoint(writer, 0);
	sqlite3_wal_hook(writer, on_commit, NULL);
	if (pthread_create(&thread, NULL, checkpoint_main, NULL) != 0) {
		db_close(db);
		db = NULL;
		fmt_into(err, errsize, "cannot start the checkpoint thread");
		return -1;
	}
	return 0;
}

void col_checkpoints_stop(void)
{
	if (!db)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	db_close(db);
	db = NULL;
}
