/* complaints.c - complaints (投诉) as tickets, rectification (整改) and
 * leaders' reviews (点评): the office's follow-up of a round.
 *
 * A ballot's comment comes in through the collector (collector/writer.c)
 * with no time and no link to its ballot. Here a complaint becomes a ticket
 * the office can number and act on: new -> in progress -> resolved, each
 * step appended to ticket_steps and written to the ledger (ledger.c) in the
 * same transaction. Tickets are made in hourly batches per round (see
 * AGG_COMPLAINT_BATCH in agg.h), because a ticket made the moment its
 * comment arrived would time the ballot to the minute. The ledger entries
 * name the ticket and the unit, never the comment's text, which only the
 * unit's list shows, and only once the unit has k_comments comments.
 * Reviews and rectification records have no table: the ledger is their
 * record. */
#include "agg.h"

#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

/* ---- checking what people type ---- */

static bool blank(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if (!strchr(" \t\r\n", *s))
			return false;
	return true;
}

/* A name (one line) or a text; what names it in the message. A blank
 * optional text is fine (the caller treats it as none). */
static bool check_text(const char *what, const char *s, bool one_line, size_t max, bool required,
	char *err, size_t errsize)
{
	if (blank(s)) {
		if (required)
			fmt_into(err, errsize, "%s is required", what);
		return !required;
	}
	if (!utf8_valid_text(s, strlen(s)))
		fmt_into(err, errsize, "%s is not valid UTF-8 text, or holds control characters", what);
	else if (one_line && strpbrk(s, "\r\n\t"))
		fmt_into(err, errsize, "%s must be on one line", what);
	else if (utf8_length(s) > max)
		fmt_into(err, errsize, "%s is too long: at most %zu characters", what, max);
	else
		return true;
	return false;
}

static bool begin(sqlite3 *db, char *err, size_t errsize)
{
	if (db_begin(db) == SQLITE_OK)
		return true;
	fmt_into(err, errsize, "the database is busy: %s", sqlite3_errmsg(db));
	return false;
}

/* Commit, or roll back when rc is not 0 or the commit fails. */
static int finish(sqlite3 *db, int rc, char *err, size_t errsize)
{
	if (rc == 0 && db_commit(db) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot save: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	if (rc != 0)
		db_rollback(db);
	return rc;
}

/* The ledger body of a ticket step; note NULL is written as null. */
static char *step_body(int64_t ticket, const char *round, const char *unit, const char *who,
	const char *note)
{
	char *jnote = note ? fmt_alloc("%J", note) : NULL;
	char *body = fmt_alloc("{\"ticket\":%lld,\"round\":%J,\"unit\":%J,\"who\":%J,\"note\":%s}",
		(long long)ticket, round, unit, who, jnote ? jnote : "null"); /* jnote: JSON made above */
	free(jnote);
	return body;
}

/* ---- making tickets ---- */

typedef struct pending {
	unsigned char id[16];
	char *unit;
} pending;

/* One round's batch: a ticket for each of its complaints without one, in
 * the order of the comments' random keys. Returns how many, or -1. */
static int batch(sqlite3 *db, const char *round, int64_t now, const char *who, char *err, size_t errsize)
{
	pending *p = NULL;
	size_t n = 0;
	sqlite3_stmt *st = db_prepare(db, "SELECT c.id, c.unit FROM comments c WHERE c.round = ? "
		"AND c.complaint = 1 AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.comment = c.id) "
		"ORDER BY c.id", "t", round);
	while (db_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 16)
			continue;
		p = xrealloc(p, (n + 1) * sizeof *p);
		memcpy(p[n].id, sqlite3_column_blob(st, 0), 16);
		p[n++].unit = xstrdup(db_col_text(st, 1));
	}
	db_finalize(st);
	int made = 0;
	for (size_t i = 0; i < n && made >= 0; i++) {
		if (db_exec(db, "INSERT INTO tickets(comment, round, unit, opened_at) VALUES (?, ?, ?, ?)",
				"bttI", p[i].id, sizeof p[i].id, round, p[i].unit, now) != SQLITE_OK) {
			fmt_into(err, errsize, "cannot make a ticket: %s", sqlite3_errmsg(db));
			made = -1;
			break;
		}
		int64_t ticket = sqlite3_last_insert_rowid(db);
		char *body = step_body(ticket, round, p[i].unit, who, NULL);
		if (db_exec(db, "INSERT INTO ticket_steps(ticket, step, who, at) VALUES (?, 'opened', ?, ?)",
				"ItI", ticket, who, now) != SQLITE_OK) {
			fmt_into(err, errsize, "cannot record the ticket: %s", sqlite3_errmsg(db));
			made = -1;
		} else if (agg_ledger_append(db, "complaint.opened", round, body, err, errsize) != 0)
			made = -1;
		else
			made++;
		free(body);
	}
	for (size_t i = 0; i < n; i++)
		free(p[i].unit);
	free(p);
	if (made >= 0 && db_exec(db, "INSERT INTO complaint_batches(round, at) VALUES (?, ?) "
			"ON CONFLICT DO UPDATE SET at = excluded.at", "tI", round, now) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot record the batch: %s", sqlite3_errmsg(db));
		made = -1;
	}
	return made;
}

/* The rounds whose batch is due at now: those that may still get complaints
 * (open) or have some without a ticket, an hour after their last batch (or
 * their opening). *n receives how many; *next (may be NULL) the earliest
 * time one that is not due will be. Caller frees. */
static char **due_rounds(sqlite3 *db, int64_t now, size_t *n, int64_t *next)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT r.id, coalesce(b.at, r.opened_at) FROM rounds r "
		"LEFT JOIN complaint_batches b ON b.round = r.id WHERE r.opened_at IS NOT NULL "
		"AND (r.state = 'open' OR EXISTS (SELECT 1 FROM comments c WHERE c.round = r.id "
		"AND c.complaint = 1 AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.comment = c.id))) "
		"ORDER BY r.id", NULL);
	char **due = NULL;
	*n = 0;
	if (next)
		*next = 0;
	while (db_step(st) == SQLITE_ROW) {
		int64_t at = sqlite3_column_int64(st, 1) + AGG_COMPLAINT_BATCH;
		if (at <= now) {
			due = xrealloc(due, (*n + 1) * sizeof *due);
			due[(*n)++] = xstrdup(db_col_text(st, 0));
		} else if (next && (*next == 0 || at < *next))
			*next = at;
	}
	db_finalize(st);
	return due;
}

static void free_rounds(char **r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i]);
	free(r);
}

int agg_complaints_sync(sqlite3 *db, int64_t now, const char *who, int64_t *next,
	char *err, size_t errsize)
{
	if (!check_text("the name (who)", who, true, AGG_WHO_MAX, true, err, errsize))
		return -1;
	/* Look before taking the write lock: the daemon asks every tick, and
	 * almost always nothing is due. */
	size_t n_due;
	char **due = due_rounds(db, now, &n_due, next);
	free_rounds(due, n_due);
	if (n_due == 0)
		return 0;
	if (!begin(db, err, errsize))
		return -1;
	due = due_rounds(db, now, &n_due, next);   /* again, under the lock */
	int made = 0;
	for (size_t i = 0; i < n_due && made >= 0; i++) {
		int k = batch(db, due[i], now, who, err, errsize);
		made = k < 0 ? -1 : made + k;
	}
	free_rounds(due, n_due);
	if (finish(db, made < 0 ? -1 : 0, err, errsize) != 0)
		return -1;
	return made;
}

/* ---- moving tickets ---- */

const char *agg_ticket_refusal(const char *state, const char *next, bool has_note)
{
	bool known = str_eq(state, "new") || str_eq(state, "in_progress") || str_eq(state, "resolved");
	if (!known)
		return "its state is unknown";
	if (str_eq(state, "resolved"))
		return "it is resolved already, and a resolved ticket stays closed "
			"(record further work with: pingyi rectify add)";
	if (str_eq(next, "in_progress"))
		return str_eq(state, "new") ? NULL : "it is already in progress";
	if (str_eq(next, "resolved"))
		return has_note ? NULL : "resolving needs a note of what was done (the 整改 record)";
	if (str_eq(next, "new"))
		return "a ticket never goes back to new";
	return "that is not a state a ticket can move to";
}

static int move(sqlite3 *db, int64_t ticket, const char *next, const char *who, const char *note,
	int64_t now, char *err, size_t errsize)
{
	if (!check_text("the name (--by)", who, true, AGG_WHO_MAX, true, err, errsize) ||
	    !check_text("the note", note, false, AGG_NOTE_MAX, false, err, errsize))
		return -1;
	if (blank(note))
		note = NULL;
	if (!begin(db, err, errsize))
		return -1;
	sqlite3_stmt *st = db_prepare(db, "SELECT state, round, unit FROM tickets WHERE id = ?", "I", ticket);
	char *state = NULL, *round = NULL, *unit = NULL;
	if (db_step(st) == SQLITE_ROW) {
		state = xstrdup(db_col_text(st, 0));
		round = xstrdup(db_col_text(st, 1));
		unit = xstrdup(db_col_text(st, 2));
	}
	db_finalize(st);
	int rc = -1;
	bool progress = str_eq(next, "in_progress");
	const char *why = state ? agg_ticket_refusal(state, next, note != NULL) : NULL;
	if (!state)
		fmt_into(err, errsize, "no ticket %lld (see: pingyi complaints list)", (long long)ticket);
	else if (why)
		fmt_into(err, errsize, "ticket %lld cannot be %s: %s", (long long)ticket,
			progress ? "taken" : "resolved", why);
	else if (db_exec(db, progress ? "UPDATE tickets SET state = 'in_progress', taken_at = ? WHERE id = ?"
			: "UPDATE tickets SET state = 'resolved', resolved_at = ? WHERE id = ?",
			"II", now, ticket) != SQLITE_OK ||
		 db_exec(db, "INSERT INTO ticket_steps(ticket, step, who, note, at) VALUES (?, ?, ?, ?, ?)",
			"ItttI", ticket, progress ? "progress" : "resolved", who, note, now) != SQLITE_OK)
		fmt_into(err, errsize, "cannot record the step: %s", sqlite3_errmsg(db));
	else {
		char *body = step_body(ticket, round, unit, who, note);
		if (agg_ledger_append(db, progress ? "complaint.progress" : "complaint.resolved",
				round, body, err, errsize) == 0)
			rc = 0;
		free(body);
	}
	free(state);
	free(round);
	free(unit);
	return finish(db, rc, err, errsize);
}

int agg_ticket_take(sqlite3 *db, int64_t ticket, const char *who, const char *note,
	int64_t now, char *err, size_t errsize)
{
	return move(db, ticket, "in_progress", who, note, now, err, errsize);
}

int agg_ticket_resolve(sqlite3 *db, int64_t ticket, const char *who, const char *note,
	int64_t now, char *err, size_t errsize)
{
	return move(db, ticket, "resolved", who, note, now, err, errsize);
}

/* ---- reading tickets ---- */

static bool round_exists(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	if (db_int(db, 0, "SELECT count(*) FROM rounds WHERE id = ?", "t", round) > 0)
		return true;
	fmt_into(err, errsize, "no round \"%s\" (see: pingyi round list)", round);
	return false;
}

/* The round's k_comments, from its frozen rules; -1 with err if unreadable. */
static int k_comments(sqlite3 *db, const char *round, char *err, size_t errsize)
{
	char *json = db_text(db, "SELECT rules FROM rounds WHERE id = ?", "t", round);
	agg_rules r;
	char why[256];
	int k = -1;
	if (!json)
		fmt_into(err, errsize, "no round \"%s\"", round);
	else if (agg_rules_parse_json(json, &r, why, sizeof why) != 0)
		fmt_into(err, errsize, "round %s: %s", round, why);
	else
		k = r.k_comments;
	free(json);
	return k;
}

void agg_tickets_free(agg_ticket *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].round);
		free(t[i].unit);
		free(t[i].state);
		free(t[i].by);
		free(t[i].text);
	}
	free(t);
}

int agg_tickets_list(sqlite3 *db, const char *round, const char *unit, const char *state,
	agg_ticket **out, size_t *n, char *err, size_t errsize)
{
	*out = NULL;
	*n = 0;
	if (round && !round_exists(db, round, err, errsize))
		return -1;
	if (unit && db_int(db, 0, "SELECT count(*) FROM units WHERE id = ?", "t", unit) == 0) {
		fmt_into(err, errsize, "no unit \"%s\" (see: pingyi units list)", unit);
		return -1;
	}
	if (state && !str_eq(state, "new") && !str_eq(state, "in_progress") && !str_eq(state, "resolved")) {
		fmt_into(err, errsize, "unknown state \"%s\" (use new, in_progress or resolved)", state);
		return -1;
	}
	sqlite3_stmt *st = db_prepare(db,
		"WITH n AS (SELECT round, unit, count(*) AS n FROM comments GROUP BY round, unit)"
		" SELECT t.id, t.round, t.unit, t.state, t.opened_at, coalesce(t.taken_at, 0),"
		"  coalesce(t.resolved_at, 0), c.body, coalesce(n.n, 0),"
		"  (SELECT s.who FROM ticket_steps s WHERE s.ticket = t.id AND s.step <> 'opened'"
		"   ORDER BY s.id DESC LIMIT 1)"
		" FROM tickets t JOIN comments c ON c.id = t.comment"
		" LEFT JOIN n ON n.round = t.round AND n.unit = t.unit"
		" WHERE (?1 IS NULL OR t.round = ?1) AND (?2 IS NULL OR t.unit = ?2) AND (?3 IS NULL OR t.state = ?3)"
		" ORDER BY t.id", "ttt", round, unit, state);
	agg_ticket *t = NULL;
	size_t count = 0;
	int rc = 0;
	char *k_round = NULL;   /* the round whose k is in k */
	int k = 0;
	while (rc == 0 && db_step(st) == SQLITE_ROW) {
		const char *r = db_col_text(st, 1);
		if (!k_round || !str_eq(k_round, r)) {
			free(k_round);
			k_round = xstrdup(r);
			if ((k = k_comments(db, r, err, errsize)) < 0) {
				rc = -1;
				break;
			}
		}
		t = xrealloc(t, (count + 1) * sizeof *t);
		agg_ticket *x = &t[count++];
		x->id = sqlite3_column_int64(st, 0);
		x->round = xstrdup(r);
		x->unit = xstrdup(db_col_text(st, 2));
		x->state = xstrdup(db_col_text(st, 3));
		x->opened_at = sqlite3_column_int64(st, 4);
		x->taken_at = sqlite3_column_int64(st, 5);
		x->resolved_at = sqlite3_column_int64(st, 6);
		x->comments = sqlite3_column_int64(st, 8);
		x->k_comments = k;
		x->text = x->comments >= k ? xstrdup(db_col_text(st, 7)) : NULL;
		x->by = sqlite3_column_type(st, 9) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, 9));
	}
	db_finalize(st);
	free(k_round);
	if (rc != 0) {
		agg_tickets_free(t, count);
		return -1;
	}
	*out = t;
	*n = count;
	return 0;
}

/* ---- time to resolve ---- */

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Fill r's figures from its resolve durations (seconds, any order). */
static void figures(agg_resolve_time *r, int64_t *secs, size_t n)
{
	if (n == 0)
		return;
	qsort(secs, n, sizeof *secs, by_value);
	double mid = n % 2 ? (double)secs[n / 2] : ((double)secs[n / 2 - 1] + (double)secs[n / 2]) / 2;
	r->median_hours = mid / 3600;
	r->max_hours = (double)secs[n - 1] / 3600;
}

void agg_resolve_times_free(agg_resolve_time *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].unit);
	free(t);
}

int agg_resolve_times(sqlite3 *db, const char *round, int64_t now, agg_resolve_time **out,
	size_t *n, char *err, size_t errsize)
{
	*out = NULL;
	*n = 0;
	if (!round_exists(db, round, err, errsize))
		return -1;
	sqlite3_stmt *st = db_prepare(db, "SELECT t.unit, t.opened_at, t.resolved_at FROM tickets t "
		"LEFT JOIN units u ON u.id = t.unit WHERE t.round = ? ORDER BY u.position, t.unit", "t", round);
	agg_resolve_time *r = NULL;
	size_t count = 0;
	int64_t *secs = NULL;
	size_t n_secs = 0;
	while (db_step(st) == SQLITE_ROW) {
		const char *unit = db_col_text(st, 0);
		if (count == 0 || !str_eq(r[count - 1].unit, unit)) {
			if (count > 0)
				figures(&r[count - 1], secs, n_secs);
			n_secs = 0;
			r = xrealloc(r, (count + 1) * sizeof *r);
			r[count++] = (agg_resolve_time){ .unit = xstrdup(unit) };
		}
		agg_resolve_time *x = &r[count - 1];
		int64_t opened = sqlite3_column_int64(st, 1);
		x->tickets++;
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			int64_t took = sqlite3_column_int64(st, 2) - opened;
			secs = xrealloc(secs, (n_secs + 1) * sizeof *secs);
			secs[n_secs++] = took > 0 ? took : 0;
			x->resolved++;
		} else if (now > opened && (double)(now - opened) / 3600 > x->oldest_open_hours)
			x->oldest_open_hours = (double)(now - opened) / 3600;
	}
	db_finalize(st);
	if (count > 0)
		figures(&r[count - 1], secs, n_secs);
	free(secs);
	*out = r;
	*n = count;
	return 0;
}

/* ---- reviews and rectification: the ledger only ---- */

/* Record kind for round (and unit) in the ledger after checking them. */
static int64_t record(sqlite3 *db, const char *kind, const char *round, const char *unit,
	const char *who, const char *text, char *err, size_t errsize)
{
	if (!check_text("the name (--by)", who, true, AGG_WHO_MAX, true, err, errsize) ||
	    !check_text("the text", text, false, AGG_NOTE_MAX, true, err, errsize) ||
	    !begin(db, err, errsize))
		return -1;
	int64_t seq = -1;
	char *state = db_text(db, "SELECT state FROM rounds WHERE id = ?", "t", round);
	if (!state)
		fmt_into(err, errsize, "no round \"%s\" (see: pingyi round list)", round);
	else if (str_eq(state, "draft"))
		fmt_into(err, errsize, "round \"%s\" has not opened yet; there is nothing to record", round);
	else if (unit && db_int(db, 0,
			"WITH RECURSIVE up(id) AS (SELECT unit FROM round_units WHERE round = ?1"
			" UNION SELECT u.parent FROM units u JOIN up ON u.id = up.id"
			"  WHERE u.parent IS NOT NULL AND up.id IS NOT (SELECT scope FROM rounds WHERE id = ?1))"
			" SELECT count(*) FROM up WHERE id = ?2", "tt", round, unit) == 0)
		fmt_into(err, errsize, "unit \"%s\" is not part of round \"%s\" (see: pingyi tally %s)",
			unit, round, round);
	else {
		char *junit = unit ? fmt_alloc("%J", unit) : NULL;
		char *body = fmt_alloc("{\"round\":%J,\"unit\":%s,\"who\":%J,\"text\":%J}", round,
			junit ? junit : "null", who, text);   /* junit: JSON made above */
		if (agg_ledger_append(db, kind, round, body, err, errsize) == 0)
			seq = sqlite3_last_insert_rowid(db);
		free(body);
		free(junit);
	}
	free(state);
	return finish(db, seq > 0 ? 0 : -1, err, errsize) == 0 ? seq : -1;
}

int64_t agg_review_add(sqlite3 *db, const char *round, const char *unit, const char *who,
	const char *text, char *err, size_t errsize)
{
	return record(db, "review.added", round, unit, who, text, err, errsize);
}

int64_t agg_rectify_add(sqlite3 *db, const char *round, const char *unit, const char *who,
	const char *text, char *err, size_t errsize)
{
	if (!unit) {
		fmt_into(err, errsize, "a rectification record names the unit that rectified (--unit)");
		return -1;
	}
	return record(db, "rectification.recorded", round, unit, who, text, err, errsize);
}
