/* ledger.c - the append-only, hash-chained ledger (台账).
 *
 * Each entry's hash is SHA-256 over a length-prefixed encoding of its
 * sequence number, time, kind, round, body and the previous entry's hash,
 * so changing any byte of any column, removing an entry or swapping two is
 * caught by agg_ledger_verify. The database refuses UPDATE and DELETE on the
 * table outright (triggers in common/schema.c); the chain is the second wall,
 * for someone who edits the file itself. Removing the newest entries can
 * only be caught against a head hash published elsewhere. */
#include "agg.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include "common/db.h"
#include "common/fmt.h"

enum { HASH_LEN = crypto_hash_sha256_BYTES };

static void hash_field(crypto_hash_sha256_state *st, const void *p, size_t n)
{
	char len[32];
	fmt_into(len, sizeof len, "%zu:", n);
	crypto_hash_sha256_update(st, (const unsigned char *)len, strlen(len));
	crypto_hash_sha256_update(st, p, n);
}

/* A text column as stored: its bytes, all of them (a NUL inside must not
 * hide what follows it from the hash). */
typedef struct text {
	const char *p;
	size_t n;
} text;

static text text_of(const char *s) { return (text){ s ? s : "", s ? strlen(s) : 0 }; }

static text column_text(sqlite3_stmt *st, int i)
{
	const char *p = (const char *)sqlite3_column_text(st, i);
	return (text){ p ? p : "", p ? (size_t)sqlite3_column_bytes(st, i) : 0 };
}

static void entry_hash(int64_t seq, int64_t at, text kind, text round, text body,
	const unsigned char *prev, unsigned char out[HASH_LEN])
{
	char num[64];
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	hash_field(&st, "pingyi-ledger-v1", 16);
	fmt_into(num, sizeof num, "%lld", (long long)seq);
	hash_field(&st, num, strlen(num));
	fmt_into(num, sizeof num, "%lld", (long long)at);
	hash_field(&st, num, strlen(num));
	hash_field(&st, kind.p, kind.n);
	hash_field(&st, round.p, round.n);
	hash_field(&st, body.p, body.n);
	hash_field(&st, prev, HASH_LEN);
	crypto_hash_sha256_final(&st, out);
}

int agg_ledger_append(sqlite3 *db, const char *kind, const char *round,
	const char *body, char *err, size_t errsize)
{
	unsigned char prev[HASH_LEN] = { 0 }, hash[HASH_LEN];
	int64_t seq = 1;
	sqlite3_stmt *st = db_prepare(db, "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1", NULL);
	if (db_step(st) == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0) + 1;
		if (sqlite3_column_bytes(st, 1) == HASH_LEN)
			memcpy(prev, sqlite3_column_blob(st, 1), HASH_LEN);
	}
	db_finalize(st);
	int64_t at = (int64_t)time(NULL);
	entry_hash(seq, at, text_of(kind), text_of(round), text_of(body), prev, hash);
	int rc = db_exec(db, "INSERT INTO ledger(seq, at, kind, round, body, prev, hash) "
		"VALUES (?, ?, ?, ?, ?, ?, ?)", "IItttbb", seq, at, kind, round, body,
		prev, (size_t)HASH_LEN, hash, (size_t)HASH_LEN);
	if (rc != SQLITE_OK) {
		fmt_into(err, errsize, "cannot write the ledger: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* The fields of a unit's figures that a recorded result must keep. */
static bool same_figures(json_t *a, json_t *b)
{
	static const char *const keys[] = { "ballots", "valid", "rate", "score", "dissatisfied", "met" };
	if (json_is_null(a) || json_is_null(b) || !a || !b)
		return json_is_null(a) == json_is_null(b) && !a == !b;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i])))
			return false;
	return true;
}

/* Does a recorded round.closed body agree with a recount of the ballots?
 * Fills why with the first unit that differs. */
static bool matches_recount(sqlite3 *db, const char *round, const char *body, char *why, size_t n)
{
	agg_tally t;
	char err[512];
	if (agg_tally_recount(db, round, &t, err, sizeof err) != 0) {
		fmt_into(why, n, "%s", err);
		return false;
	}
	buf now;
	buf_init(&now, 256 << 20);
	agg_tally_json(&t, &now);
	agg_tally_free(&t);
	json_t *a = json_loads(body, 0, NULL), *b = json_loads(buf_str(&now), 0, NULL);
	buf_free(&now);
	json_t *ua = json_object_get(a, "units"), *ub = json_object_get(b, "units");
	bool ok = json_is_array(ua) && json_is_array(ub) && json_array_size(ua) == json_array_size(ub);
	if (!ok)
		fmt_into(why, n, "it lists other units than a recount does");
	for (size_t i = 0; ok && i < json_array_size(ua); i++) {
		json_t *x = json_array_get(ua, i), *y = json_array_get(ub, i);
		ok = json_equal(json_object_get(x, "id"), json_object_get(y, "id")) &&
			json_equal(json_object_get(x, "grade"), json_object_get(y, "grade")) &&
			same_figures(json_object_get(x, "own"), json_object_get(y, "own")) &&
			same_figures(json_object_get(x, "subtree"), json_object_get(y, "subtree"));
		if (!ok)
			fmt_into(why, n, "unit %s differs from a recount of the ballots",
				json_string_value(json_object_get(x, "id")));
	}
	json_decref(a);
	json_decref(b);
	return ok;
}

/* Each round's last round.closed entry against a recount. Returns the
 * first entry that disagrees, or 0. */
static int64_t check_closed_rounds(sqlite3 *db, buf *report)
{
	int64_t bad = 0;
	sqlite3_stmt *st = db_prepare(db, "SELECT seq, round, body FROM ledger l WHERE kind = 'round.closed' "
		"AND seq = (SELECT max(seq) FROM ledger WHERE kind = 'round.closed' AND round = l.round) ORDER BY seq", NULL);
	while (!bad && db_step(st) == SQLITE_ROW) {
		char why[512];
		if (!matches_recount(db, db_col_text(st, 1), db_col_text(st, 2), why, sizeof why)) {
			bad = sqlite3_column_int64(st, 0);
			buf_fmt(report, "entry %lld records round %s's result, but %s\n", (long long)bad,
				db_col_text(st, 1), why);
		}
	}
	db_finalize(st);
	return bad;
}

int64_t agg_ledger_verify(sqlite3 *db, buf *report)
{
	unsigned char prev[HASH_LEN] = { 0 }, hash[HASH_LEN];
	int64_t expect = 1, bad = 0;
	sqlite3_stmt *st = db_prepare(db,
		"SELECT seq, at, kind, round, body, prev, hash FROM ledger ORDER BY seq", NULL);
	int rc;
	while (!bad && (rc = db_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		int64_t at = sqlite3_column_int64(st, 1);
		const void *stored_prev = sqlite3_column_blob(st, 5);
		bool prev_ok = sqlite3_column_bytes(st, 5) == HASH_LEN && !memcmp(stored_prev, prev, HASH_LEN);
		if (seq != expect) {
			bad = expect;
			buf_fmt(report, "entry %lld is missing: the ledger jumps from entry %lld to %lld\n",
				(long long)expect, (long long)expect - 1, (long long)seq);
			break;
		}
		entry_hash(seq, at, column_text(st, 2), column_text(st, 3), column_text(st, 4),
			sqlite3_column_bytes(st, 5) == HASH_LEN ? stored_prev : prev, hash);
		bool hash_ok = sqlite3_column_bytes(st, 6) == HASH_LEN &&
			!memcmp(sqlite3_column_blob(st, 6), hash, HASH_LEN);
		if (!hash_ok) {
			bad = seq;
			buf_fmt(report, "entry %lld was altered: its contents no longer match its hash\n",
				(long long)seq);
		} else if (!prev_ok) {
			bad = seq;
			buf_fmt(report, "entry %lld does not follow entry %lld: the chain is broken there "
				"(an entry was removed, reordered or rewritten)\n", (long long)seq, (long long)seq - 1);
		}
		else
			memcpy(prev, hash, HASH_LEN);
		expect++;
	}
	db_finalize(st);
	if (bad)
		return bad;
	if (rc != SQLITE_DONE) {
		buf_fmt(report, "cannot read the ledger: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	if ((bad = check_closed_rounds(db, report)) != 0)
		return bad;
	buf_fmt(report, "ledger intact: %lld entries; every closed round's result agrees with its ballots\n",
		(long long)expect - 1);
	return 0;
}
