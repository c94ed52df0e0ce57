/* schema.c - the tables, as migrations.
 *
 * Never edit a migration that has shipped: add the next one. Design notes:
 *  - units.token is the unguessable short name printed in QR codes; ids are
 *    the organisation's own and may be guessable.
 *  - ballots and comments are WITHOUT ROWID tables keyed by 16 random bytes
 *    (ballots by round, then the random bytes: migration 4), so neither the
 *    key nor the physical order follows submission order, and they carry no
 *    time at all (DESIGN.md §3). A comment is not linked to the ballot it
 *    came with.
 *  - counts holds one counter per (round, unit, voter group, question,
 *    level), updated in the same transaction as each ballot, so a tally
 *    reads O(units) rows; ballot_counts counts the ballots themselves.
 *  - round_units freezes which units a round rates when it opens.
 *  - the ledger is append-only: triggers refuse UPDATE and DELETE, and each
 *    row's hash covers the previous row's (aggregator/ledger.c). */
#include "schema.h"

#include "db.h"
#include "fmt.h"

static const char *const migrations[] = {
	/* 1: the foundation */
	"CREATE TABLE meta(\n"
	"  key TEXT PRIMARY KEY,\n"
	"  value TEXT NOT NULL\n"
	") STRICT;\n"
	"CREATE TABLE units(\n"
	"  id TEXT PRIMARY KEY,\n"
	"  parent TEXT REFERENCES units(id),\n"
	"  kind TEXT NOT NULL CHECK (kind IN ('committee','general_branch','branch','department','window')),\n"
	"  name_zh TEXT NOT NULL,\n"
	"  name_en TEXT NOT NULL,\n"
	"  token TEXT NOT NULL UNIQUE,\n"
	"  position INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE TABLE rounds(\n"
	"  id TEXT PRIMARY KEY,\n"
	"  series TEXT NOT NULL DEFAULT '',\n"
	"  title_zh TEXT NOT NULL,\n"
	"  title_en TEXT NOT NULL,\n"
	"  scope TEXT REFERENCES units(id),\n"
	"  form_id TEXT NOT NULL,\n"
	"  form_src TEXT NOT NULL,\n"
	"  rules TEXT NOT NULL,\n"
	"  state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft','open','closed')),\n"
	"  closes_at INTEGER,\n"
	"  opened_at INTEGER,\n"
	"  closed_at INTEGER\n"
	") STRICT;\n"
	"CREATE TABLE round_units(\n"
	"  round TEXT NOT NULL REFERENCES rounds(id),\n"
	"  unit TEXT NOT NULL REFERENCES units(id),\n"
	"  PRIMARY KEY (round, unit)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE INDEX round_units_by_unit ON round_units(unit);\n"
	"CREATE TABLE ballots(\n"
	"  id BLOB PRIMARY KEY CHECK (length(id) = 16),\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  grp TEXT NOT NULL,\n"
	"  answers TEXT NOT NULL,\n"
	"  FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE TABLE comments(\n"
	"  id BLOB PRIMARY KEY CHECK (length(id) = 16),\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  body TEXT NOT NULL,\n"
	"  complaint INTEGER NOT NULL CHECK (complaint IN (0, 1)),\n"
	"  FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE TABLE counts(\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  grp TEXT NOT NULL,\n"
	"  question TEXT NOT NULL,\n"
	"  level TEXT NOT NULL,\n"
	"  n INTEGER NOT NULL,\n"
	"  PRIMARY KEY (round, unit, grp, question, level)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE TABLE ballot_counts(\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  grp TEXT NOT NULL,\n"
	"  n INTEGER NOT NULL,\n"
	"  PRIMARY KEY (round, unit, grp)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE TABLE ledger(\n"
	"  seq INTEGER PRIMARY KEY,\n"
	"  at INTEGER NOT NULL,\n"
	"  kind TEXT NOT NULL,\n"
	"  round TEXT,\n"
	"  body TEXT NOT NULL,\n"
	"  prev BLOB NOT NULL,\n"
	"  hash BLOB NOT NULL\n"
	") STRICT;\n"
	"CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger\n"
	"  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n"
	"CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger\n"
	"  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n",

	/* 2: ballot codes (测评码). A round takes open ballots (posters) or
	 * only ballots with a code. codes holds a keyed hash of each code, never
	 * the code; code_uses records that a code rated a unit, and nothing that
	 * leads to the ballot. */
	"ALTER TABLE rounds ADD COLUMN mode TEXT NOT NULL DEFAULT 'open' CHECK (mode IN ('open','code'));\n"
	"CREATE TABLE codes(\n"
	"  hash BLOB PRIMARY KEY CHECK (length(hash) = 32),\n"
	"  round TEXT NOT NULL REFERENCES rounds(id),\n"
	"  grp TEXT NOT NULL,\n"
	"  scope TEXT NOT NULL REFERENCES units(id)\n"
	") STRICT, WITHOUT ROWID;\n"
	"CREATE INDEX codes_by_round ON codes(round, grp);\n"
	"CREATE TABLE code_uses(\n"
	"  hash BLOB NOT NULL REFERENCES codes(hash),\n"
	"  unit TEXT NOT NULL REFERENCES units(id),\n"
	"  PRIMARY KEY (hash, unit)\n"
	") STRICT, WITHOUT ROWID;\n",

	/* 3: complaints (投诉) as tickets. A ticket is the office's record, not
	 * the rater's: its number and times start when the office's software
	 * makes it (aggregator/complaints.c), and complaint_batches makes that
	 * happen at most once an hour per round, so neither says more about when
	 * the ballot came than the hour. ticket_steps is append-only like the
	 * ledger; a ticket only moves forward and is never deleted. The
	 * *_no_replace triggers are there because INSERT OR REPLACE deletes the
	 * old row without firing DELETE triggers. Leaders' reviews and
	 * rectification records go only to the ledger. */
	"CREATE TABLE tickets(\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  comment BLOB NOT NULL UNIQUE REFERENCES comments(id),\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new','in_progress','resolved')),\n"
	"  opened_at INTEGER NOT NULL,\n"
	"  taken_at INTEGER,\n"
	"  resolved_at INTEGER,\n"
	"  FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)\n"
	") STRICT;\n"
	"CREATE INDEX tickets_by_round ON tickets(round, unit);\n"
	"CREATE TRIGGER tickets_no_delete BEFORE DELETE ON tickets\n"
	"  BEGIN SELECT RAISE(ABORT, 'tickets are never deleted'); END;\n"
	"CREATE TRIGGER tickets_no_replace BEFORE INSERT ON tickets\n"
	"  WHEN EXISTS (SELECT 1 FROM tickets WHERE id = NEW.id OR comment = NEW.comment)\n"
	"  BEGIN SELECT RAISE(ABORT, 'tickets are never deleted'); END;\n"
	"CREATE TRIGGER tickets_forward_only BEFORE UPDATE ON tickets\n"
	"  WHEN NEW.id IS NOT OLD.id OR NEW.comment IS NOT OLD.comment OR NEW.round IS NOT OLD.round\n"
	"    OR NEW.unit IS NOT OLD.unit OR NEW.opened_at IS NOT OLD.opened_at OR OLD.state = 'resolved'\n"
	"    OR (OLD.state = 'in_progress' AND NEW.state = 'new')\n"
	"  BEGIN SELECT RAISE(ABORT, 'a ticket only moves forward: new, in progress, resolved'); END;\n"
	"CREATE TABLE ticket_steps(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  ticket INTEGER NOT NULL REFERENCES tickets(id),\n"
	"  step TEXT NOT NULL CHECK (step IN ('opened','progress','resolved')),\n"
	"  who TEXT NOT NULL,\n"
	"  note TEXT,\n"
	"  at INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE INDEX ticket_steps_by_ticket ON ticket_steps(ticket);\n"
	"CREATE TRIGGER ticket_steps_no_update BEFORE UPDATE ON ticket_steps\n"
	"  BEGIN SELECT RAISE(ABORT, 'ticket steps are append-only'); END;\n"
	"CREATE TRIGGER ticket_steps_no_delete BEFORE DELETE ON ticket_steps\n"
	"  BEGIN SELECT RAISE(ABORT, 'ticket steps are append-only'); END;\n"
	"CREATE TRIGGER ticket_steps_no_replace BEFORE INSERT ON ticket_steps\n"
	"  WHEN EXISTS (SELECT 1 FROM ticket_steps WHERE id = NEW.id)\n"
	"  BEGIN SELECT RAISE(ABORT, 'ticket steps are append-only'); END;\n"
	"CREATE INDEX comments_by_unit ON comments(round, unit, complaint);\n"
	"CREATE TRIGGER ledger_no_replace BEFORE INSERT ON ledger\n"
	"  WHEN EXISTS (SELECT 1 FROM ledger WHERE seq = NEW.seq)\n"
	"  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n"
	"CREATE TABLE complaint_batches(\n"
	"  round TEXT PRIMARY KEY REFERENCES rounds(id),\n"
	"  at INTEGER NOT NULL\n"
	") STRICT;\n",

	/* 4: ballots keyed by (round, random id). Within a round the order is
	 * still random; across rounds it was never hidden (a ballot names its
	 * round). A new ballot now lands among its own round's ballots, not
	 * among every ballot of every past round: the pages a busy round dirties,
	 * and the writer's cache misses, stay as many as that round needs, and a
	 * tally or recount reads one round's range instead of the whole table. */
	"CREATE TABLE ballots_v4(\n"
	"  id BLOB NOT NULL CHECK (length(id) = 16),\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  grp TEXT NOT NULL,\n"
	"  answers TEXT NOT NULL,\n"
	"  PRIMARY KEY (round, id),\n"
	"  FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)\n"
	") STRICT, WITHOUT ROWID;\n"
	"INSERT INTO ballots_v4(id, round, unit, grp, answers)\n"
	"  SELECT id, round, unit, grp, answers FROM ballots;\n"
	"DROP TABLE ballots;\n"
	"ALTER TABLE ballots_v4 RENAME TO ballots;\n",

	/* 5: a ballot is first appended to ballot_intake, in arrival order,
	 * and moved soon after, in key order, into ballot_store (random keys,
	 * random order: collector/intake.c says why and how). The view ballots
	 * shows each ballot once wherever it is, so readers need not know. */
	"ALTER TABLE ballots RENAME TO ballot_store;\n"
	"CREATE TABLE ballot_intake(\n"
	"  seq INTEGER PRIMARY KEY,\n"
	"  id BLOB NOT NULL CHECK (length(id) = 16),\n"
	"  round TEXT NOT NULL,\n"
	"  unit TEXT NOT NULL,\n"
	"  grp TEXT NOT NULL,\n"
	"  answers TEXT NOT NULL,\n"
	"  FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)\n"
	") STRICT;\n"
	"CREATE VIEW ballots(id, round, unit, grp, answers) AS\n"
	"  SELECT id, round, unit, grp, answers FROM ballot_store\n"
	"  UNION ALL\n"
	"  SELECT id, round, unit, grp, answers FROM ballot_intake i\n"
	"   WHERE NOT EXISTS (SELECT 1 FROM ballot_store s WHERE s.round = i.round AND s.id = i.id);\n",
};

enum { N_MIGRATIONS = sizeof migrations / sizeof migrations[0] };

int schema_version(void) { return N_MIGRATIONS; }

static int current_version(sqlite3 *db)
{
	return (int)db_int(db, 0, "PRAGMA user_version", NULL);
}

int schema_migrate(sqlite3 *db, char *err, size_t errsize)
{
	if (db_begin(db) != SQLITE_OK) {
		fmt_into(err, errsize, "cannot lock the database to upgrade it: %s", sqlite3_errmsg(db));
		return -1;
	}
	int v = current_version(db);
	if (v > N_MIGRATIONS) {
		db_rollback(db);
		fmt_into(err, errsize, "the database has schema version %d, newer than this build (%d): "
			"use a newer pingyi", v, N_MIGRATIONS);
		return -1;
	}
	for (; v < N_MIGRATIONS; v++) {
		char *msg = NULL;
		if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK) {
			fmt_into(err, errsize, "upgrading the database to version %d failed: %s", v + 1, msg);
			sqlite3_free(msg);
			db_rollback(db);
			return -1;
		}
	}
	/* PRAGMA takes no bound parameters; the value is our own integer. */
	char pragma[64];
	fmt_into(pragma, sizeof pragma, "PRAGMA user_version=%d", v);
	if (sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK || db_commit(db) != SQLITE_OK) {
		fmt_into(err, errsize, "upgrading the database failed: %s", sqlite3_errmsg(db));
		db_rollback(db);
		return -1;
	}
	return 0;
}

sqlite3 *schema_open(const char *path, int mode, char *err, size_t errsize)
{
	sqlite3 *db = db_open(path, mode, err, errsize);
	if (!db)
		return NULL;
	if (mode & DB_READONLY) {
		if (current_version(db) != N_MIGRATIONS) {
			fmt_into(err, errsize, "database %s has schema version %d, this build needs %d "
				"(open it once read-write to upgrade)", path, current_version(db), N_MIGRATIONS);
			db_close(db);
			return NULL;
		}
		return db;
	}
	if (schema_migrate(db, err, errsize) != 0) {
		db_close(db);
		return NULL;
	}
	return db;
}
