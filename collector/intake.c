/* intake.c - where a ballot waits between its commit and its shuffled place.
 *
 * Ballot keys are random (docs/anonymity.md), so a ballot inserted straight
 * into its table lands on a page of its own: each one cost a 4 KiB page
 * written to the WAL, and again into the database at checkpoint. Instead,
 * the writer appends ballots to ballot_intake, a rowid table that a batch
 * fills a few pages at a time, and the intake moves on into ballot_store in
 * key order, a slice in each transaction the writer commits anyway: rows
 * taken in key order fill the store's pages one after another.
 *
 *   arriving   ballots committed since the last freeze, in arrival order
 *   frozen     once the oldest arriving ballot has waited FREEZE_MS (or the
 *              writer is idle), the arriving ones become the generation:
 *              sorted by key, moved into the store slice by slice, then
 *              deleted from the intake (secure_delete zeroes them)
 *
 * The intake shows the order of arrival, which the store must not, so a
 * ballot stays there seconds at most, like the WAL's pages. The view ballots
 * (common/schema.c) shows each ballot once, in the store or in the intake.
 * A crash loses nothing: moved rows are moved again (the store ignores a key
 * it has) and deleted; unmoved rows start the next generation.
 *
 * Only the writer thread calls these; a call's changes belong to the
 * writer's open transaction until intake_end() hears how it ended. */
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
	SLICE_MAX = 1 << 14,       /* rows moved by one statement */
};

/* A ballot in the intake: the first 16 bits of its key (all the sorting
 * needs) above its seq, in 8 bytes: a rush's intake stays a few MB. */
typedef uint64_t entry;
enum { SEQ_BITS = 48 };

static entry entry_of(const unsigned char id[16], int64_t seq)
{
	return (uint64_t)(id[0] << 8 | id[1]) << SEQ_BITS | (uint64_t)seq;
}

static int64_t seq_of(entry e) { return (int64_t)(e & (((uint64_t)1 << SEQ_BITS) - 1)); }
static unsigned prefix_of(entry e) { return (unsigned)(e >> SEQ_BITS); }

typedef struct entries {
	entry *v;
	size_t n, cap;
} entries;

static sqlite3 *db;
static sqlite3_stmt *st_add, *st_move, *st_delete, *st_load;
static buf slice;                 /* the seqs to move, a JSON array */

static entries arriving, batch;   /* batch: added in the open transaction */
static int64_t arriving_since;    /* ms: when the oldest arriving one committed */
static entries frozen;            /* the generation, sorted by key prefix */
static entries spare;             /* room for sorting */
static int64_t frozen_last;       /* its highest seq: every intake row up to it is frozen */
static size_t moved, moving;      /* moved for good; and in the open transaction */
static int64_t deleted, deleting; /* intake rows deleted up to this seq: likewise */

static void push(entries *e, entry x)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 1024;
		e->v = xrealloc(e->v, e->cap * sizeof *e->v);
	}
	e->v[e->n++] = x;
}

/* Sort e by the first 16 bits of the key, using room: a page of the store
 * covers far more of the key space than 1/65,536 of it, so the order within
 * a prefix does not matter, and one counting pass (O(n)) keeps a freeze of
 * ~100,000 ballots from holding up a batch as qsort did (~25 ms). */
static void sort_by_prefix(entries *e, entries *room)
{
	static uint32_t start[65536 + 1];
	memset(start, 0, sizeof start);
	for (size_t i = 0; i < e->n; i++)
		start[prefix_of(e->v[i]) + 1]++;
	for (size_t p = 1; p <= 65536; p++)
		start[p] += start[p - 1];
	if (room->cap < e->n) {
		room->cap = e->cap;
		room->v = xrealloc(room->v, room->cap * sizeof *room->v);
	}
	for (size_t i = 0; i < e->n; i++)
		room->v[start[prefix_of(e->v[i])]++] = e->v[i];
	room->n = e->n;
	entries t = *e;
	*e = *room;
	*room = t;
	room->n = 0;
}

int intake_open(sqlite3 *writer, char *err, size_t errsize)
{
	db = writer;
	st_add = db_prepare(db, "INSERT INTO ballot_intake(id, round, unit, grp, answers) "
		"VALUES (?, ?, ?, ?, ?)", NULL);
	/* A ballot already in the store was moved before a crash: its random
	 * key cannot belong to another ballot. */
	st_move = db_prepare(db, "INSERT INTO ballot_store(id, round, unit, grp, answers) "
		"SELECT i.id, i.round, i.unit, i.grp, i.answers "
		"FROM json_each(?) AS s JOIN ballot_intake AS i ON i.seq = s.value ORDER BY s.key "
		"ON CONFLICT DO NOTHING", NULL);
	st_delete = db_prepare(db, "DELETE FROM ballot_intake WHERE seq <= ?", NULL);
	st_load = db_prepare(db, "SELECT id, seq FROM ballot_intake ORDER BY seq", NULL);
	buf_init(&slice, (size_t)SLICE_MAX * 24);   /* a seq is at most 20 digits */
	/* What a stop left behind arrived long ago: it moves first. */
	int rc;
	while ((rc = db_step(st_load)) == SQLITE_ROW)
		push(&arriving, entry_of(sqlite3_column_blob(st_load, 0), sqlite3_column_int64(st_load, 1)));
	sqlite3_reset(st_load);
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
	return arriving.n > 0 || frozen.n > 0;
}

static void freeze(void)
{
	entries t = frozen;
	frozen = arriving;
	arriving = t;
	arriving.n = 0;
	/* arriving was in seq order, and the intake holds nothing older */
	frozen_last = seq_of(frozen.v[frozen.n - 1]);
	deleted = deleting = seq_of(frozen.v[0]) - 1;
	sort_by_prefix(&frozen, &spare);
	moved = moving = 0;
}

/* Move up to rows frozen ballots into the store, or once all are there,
 * delete up to rows of them from the intake. One statement each: should it
 * fail, it leaves nothing behind and the ballots still commit. */
static bool step(size_t rows)
{
	if (rows > SLICE_MAX)
		rows = SLICE_MAX;
	if (moved < frozen.n) {
		/* In one statement, not one a row: each statement in a
		 * transaction costs a statement journal. */
		buf_reset(&slice);
		buf_putc(&slice, '[');
		for (moving = moved; moving < frozen.n && moving - moved < rows; moving++)
			buf_fmt(&slice, "%s%lld", moving > moved ? "," : "", (long long)seq_of(frozen.v[moving]));
		buf_putc(&slice, ']');
		db_rebind(st_move, "t", buf_str(&slice));
		return db_step(st_move) == SQLITE_DONE;
	}
	/* Seqs run (nearly) without gaps: a range of them is a run of pages,
	 * and deleting it is cheap next to moving: four times as many. */
	int64_t upto = deleted + 4 * (int64_t)rows;
	deleting = upto < frozen_last ? upto : frozen_last;
	db_rebind(st_delete, "I", deleting);
	return db_step(st_delete) == SQLITE_DONE;
}

void intake_step(size_t rows, bool idle)
{
	if (!frozen.n && arriving.n &&
	    (idle || arriving.n >= ARRIVING_MAX || clock_ms() - arriving_since >= FREEZE_MS))
		freeze();
	if (frozen.n && !step(rows)) {
		log_error("cannot move ballots out of the intake: %s", sqlite3_errmsg(db));
		moving = moved;
		deleting = deleted;
	}
}

void intake_end(bool committed)
{
	if (!committed) {
		batch.n = 0;
		moving = moved;
		deleting = deleted;
		return;
	}
	if (batch.n && !arriving.n)
		arriving_since = clock_ms();
	for (size_t i = 0; i < batch.n; i++)
		push(&arriving, batch.v[i]);
	batch.n = 0;
	moved = moving;
	deleted = deleting;
	if (frozen.n && deleted >= frozen_last)
		frozen.n = 0;   /* the generation is gone */
}

void intake_close(void)
{
	db_finalize(st_add);
	db_finalize(st_move);
	db_finalize(st_delete);
	db_finalize(st_load);
	buf_free(&slice);
	free(arriving.v);
	free(batch.v);
	free(frozen.v);
	free(spare.v);
	memset(&arriving, 0, sizeof arriving);
	memset(&batch, 0, sizeof batch);
	memset(&frozen, 0, sizeof frozen);
	memset(&spare, 0, sizeof spare);
}
