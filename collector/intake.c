/* intake.c - where a ballot waits between its commit and its shuffled place.
 *
 * Ballot keys are random (docs/anonymity.md), so a ballot inserted straight
 * into its table lands on a page of its own: each one cost a 4 KiB page
 * written to the WAL, and again into the database at checkpoint. Instead,
 * the writer appends ballots to ballot_intake, a rowid table that a batch
 * fills a few pages at a time, and the intake moves on into ballot_store in
 * key order, a slice after each batch: rows taken in key order fill the
 * store's pages one after another.
 *
 *   arriving   ballots committed since the last freeze, in arrival order
 *   frozen     once the oldest arriving ballot has waited FREEZE_MS (or the
 *              writer is idle) and the last generation is in the store, the
 *              arriving ones become the generation: sorted by key and moved
 *              into the store, a slice a statement
 *   doomed     moved ballots, in arrival order, deleted from the intake
 *              beside the next generation's moves (secure_delete zeroes
 *              them)
 *
 * Each slice moves more than a batch brings, so a generation is in the
 * store before the next is due: under load a ballot leaves the intake within
 * about 2 x FREEZE_MS, when idle within IDLE_MS (writer.c) and a few
 * statements. The intake shows the order of arrival, which the store must
 * not; the WAL's pages show it for about as long. The view ballots
 * (common/schema.c) shows each ballot once, in the store or in the intake.
 * A crash loses nothing: moved rows are moved again (the store ignores a key
 * it has) and deleted; unmoved rows start the next generation.
 *
 * Only the writer thread calls these. intake_add() writes in the writer's
 * open transaction, and intake_end() hears how that ended; intake_step()
 * runs outside any transaction. */
#include "col.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/rnd.h"

enum {
	FREEZE_MS = 3000,          /* the longest a ballot waits before it moves */
	ARRIVING_MAX = 1 << 18,    /* or the arrivals that freeze a generation */
	SLICE_MAX = 1 << 14,       /* rows moved (or deleted) by one statement */
	SEQ_BITS = 48,
};

/* A ballot in the intake: the first 16 bits of its key (all the sorting
 * needs) above its seq, in 8 bytes: a rush's intake stays a few MB. A seq
 * is a rowid of a table emptied every few seconds: far below 2^48. */
typedef uint64_t entry;

static entry entry_of(const unsigned char id[16], int64_t seq)
{
	return (uint64_t)(id[0] << 8 | id[1]) << SEQ_BITS | ((uint64_t)seq & (((uint64_t)1 << SEQ_BITS) - 1));
}

static int64_t seq_of(entry e) { return (int64_t)(e & (((uint64_t)1 << SEQ_BITS) - 1)); }
static unsigned prefix_of(entry e) { return (unsigned)(e >> SEQ_BITS); }

/* A list of entries; done of them are dealt with for good. */
typedef struct entries {
	entry *v;
	size_t n, cap, done;
} entries;

static sqlite3 *db;
static sqlite3_stmt *st_add, *st_move, *st_delete;
static buf slice;                 /* seqs for one statement, a JSON array */

static entries batch;             /* added in the open transaction */
static entries arriving;          /* committed since the last freeze */
static int64_t arriving_since;    /* ms: when the oldest arriving one committed */
static entries frozen;            /* the generation, sorted by key prefix */
static entries frozen_arrival;    /* the same, in arrival order */
static entries doomed;            /* in the store, to be deleted: arrival order */

static void reserve(entries *e, size_t n)
{
	if (e->cap < n) {
		e->cap = n;
		e->v = xrealloc(e->v, e->cap * sizeof *e->v);
	}
}

static void push(entries *e, entry x)
{
	if (e->n == e->cap)
		reserve(e, e->cap ? 2 * e->cap : 1024);
	e->v[e->n++] = x;
}

static void clear(entries *e)
{
	e->n = e->done = 0;
}

static void release(entries *e)
{
	free(e->v);
	memset(e, 0, sizeof *e);
}

/* Sort e by the first 16 bits of the key into out: a page of the store
 * covers far more of the key space than 1/65,536 of it (up to ~2 million
 * ballots a round), so the order within a prefix hardly matters, and one
 * counting pass (O(n)) keeps a freeze of ~100,000 ballots from holding up a
 * batch as qsort did (~25 ms). */
static void sort_by_prefix(const entries *e, entries *out)
{
	static uint32_t start[65536 + 1];
	memset(start, 0, sizeof start);
	for (size_t i = 0; i < e->n; i++)
		start[prefix_of(e->v[i]) + 1]++;
	for (size_t p = 1; p <= 65536; p++)
		start[p] += start[p - 1];
	clear(out);
	reserve(out, e->n);
	for (size_t i = 0; i < e->n; i++)
		out->v[start[prefix_of(e->v[i])]++] = e->v[i];
	out->n = e->n;
}

int intake_open(sqlite3 *writer, char *err, size_t errsize)
{
	db = writer;
	st_add = db_prepare(db, "INSERT INTO ballot_intake(id, round, unit, grp, answers) "
		"VALUES (?, ?, ?, ?, ?)", NULL);
	/* A ballot already in the store was moved before a crash: its random
	 * key cannot belong to another ballot. CROSS JOIN keeps json_each the
	 * outer loop, so rows come in the slice's (key) order without an ORDER
	 * BY, which would copy every row into a sorter. (WHERE, not a join's
	 * ON: before ON CONFLICT, an ON would be ambiguous to the parser.) */
	st_move = db_prepare(db, "INSERT INTO ballot_store(id, round, unit, grp, answers) "
		"SELECT i.id, i.round, i.unit, i.grp, i.answers "
		"FROM json_each(?) AS s CROSS JOIN ballot_intake AS i WHERE i.seq = s.value "
		"ON CONFLICT DO NOTHING", NULL);
	/* Exactly the rows moved: a row the writer does not know of stays. */
	st_delete = db_prepare(db, "DELETE FROM ballot_intake WHERE seq IN (SELECT value FROM json_each(?))",
		NULL);
	buf_init(&slice, (size_t)SLICE_MAX * 24);   /* a seq is at most 20 digits */
	/* What a stop left behind arrived long ago: it moves first. */
	sqlite3_stmt *st = db_prepare(db, "SELECT id, seq FROM ballot_intake ORDER BY seq", NULL);
	int rc;
	while ((rc = db_step(st)) == SQLITE_ROW)
		push(&arriving, entry_of(sqlite3_column_blob(st, 0), sqlite3_column_int64(st, 1)));
	db_finalize(st);
	if (rc != SQLITE_DONE) {
		fmt_into(err, errsize, "cannot read the ballot intake: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (arriving.n)
		log_info("%zu ballots left in the intake move on now", arriving.n);
	arriving_since = clock_ms() - FREEZE_MS;
	return 0;
}

bool intake_add(const char *round, const char *unit, const char *grp, const char *answers)
{
	unsigned char id[16];
	rnd_bytes(id, sizeof id);
	db_rebind(st_add, "btttt", id, sizeof id, round, unit, grp, answers);
	if (db_step(st_add) != SQLITE_DONE)
		return false;
	push(&batch, entry_of(id, sqlite3_last_insert_rowid(db)));
	return true;
}

bool intake_busy(void)
{
	return arriving.n > 0 || frozen.n > 0 || doomed.done < doomed.n;
}

static void freeze(void)
{
	sort_by_prefix(&arriving, &frozen);
	entries t = frozen_arrival;
	frozen_arrival = arriving;
	arriving = t;
	clear(&arriving);
}

/* Append seq in decimal: this runs for every ballot moved, and again when
 * it is deleted. */
static void put_seq(buf *b, int64_t seq)
{
	char digits[24];
	size_t i = sizeof digits;
	uint64_t v = (uint64_t)seq;
	do
		digits[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	buf_append(b, digits + i, sizeof digits - i);
}

/* Run st over the next up to rows seqs of e, in a transaction of its own;
 * done moves on if it committed. */
static bool run_slice(sqlite3_stmt *st, entries *e, size_t rows)
{
	buf_reset(&slice);
	buf_putc(&slice, '[');
	size_t end = e->done;
	for (; end < e->n && end - e->done < rows; end++) {
		if (end > e->done)
			buf_putc(&slice, ',');
		put_seq(&slice, seq_of(e->v[end]));
	}
	buf_putc(&slice, ']');
	if (slice.overflow)
		return false;
	db_rebind(st, "t", buf_str(&slice));
	if (db_step(st) != SQLITE_DONE)
		return false;
	e->done = end;
	return true;
}

/* Should the arriving ballots become the generation now? */
static bool freeze_due(bool idle)
{
	return !frozen.n && arriving.n &&
		(idle || arriving.n >= ARRIVING_MAX || clock_ms() - arriving_since >= FREEZE_MS);
}

bool intake_due(void)
{
	return frozen.done < frozen.n || doomed.done < doomed.n || freeze_due(false);
}

bool intake_step(size_t rows, bool idle)
{
	if (!sqlite3_get_autocommit(db)) {
		/* should its transaction roll back, what it counted as moved
		 * would be deleted unmoved */
		log_error("intake_step called inside a transaction: nothing moved");
		return false;
	}
	if (freeze_due(idle))
		freeze();
	if (rows > SLICE_MAX / 4)
		rows = SLICE_MAX / 4;
	/* One statement a slice, not one a row, each its own transaction: in
	 * an open one, a statement that writes many rows keeps a copy of every
	 * page it changes (a statement journal, in memory here) so that it
	 * could be undone alone; an idle 4,096-row slice took the RSS up by
	 * 10-20 MB for a moment. A statement that fails leaves nothing behind.
	 * A delete only takes rows whose move committed in an earlier
	 * statement, and a crash may lose the last commits but never keeps
	 * one without those before it: no delete outlives the move it follows.
	 * Deleting a run of arrivals is cheap next to moving: four times as
	 * many. */
	bool ok = true;
	if (frozen.done < frozen.n)
		ok = run_slice(st_move, &frozen, rows);
	if (ok && doomed.done < doomed.n)
		ok = run_slice(st_delete, &doomed, 4 * rows);
	if (!ok)
		log_error("cannot move ballots out of the intake: %s", sqlite3_errmsg(db));
	if (doomed.done == doomed.n)
		clear(&doomed);
	if (frozen.n && frozen.done == frozen.n) {
		/* the generation is in the store: off to be deleted */
		for (size_t i = 0; i < frozen_arrival.n; i++)
			push(&doomed, frozen_arrival.v[i]);
		clear(&frozen);
		clear(&frozen_arrival);
	}
	return ok;
}

void intake_end(bool committed)
{
	if (committed) {
		if (batch.n && !arriving.n)
			arriving_since = clock_ms();
		for (size_t i = 0; i < batch.n; i++)
			push(&arriving, batch.v[i]);
	}
	clear(&batch);
}

void intake_close(void)
{
	db_finalize(st_add);
	db_finalize(st_move);
	db_finalize(st_delete);
	buf_free(&slice);
	release(&batch);
	release(&arriving);
	release(&frozen);
	release(&frozen_arrival);
	release(&doomed);
}
