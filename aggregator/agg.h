/* agg.h - the aggregator's library: rules, tallies, rounds and the ledger.
 *
 * Shared by the pingyi-aggregator daemon (main.c) and the pingyi command
 * line (cli/). Ballots come in through the collector (collector/); this code
 * only reads them, through the counters the collector keeps.
 *
 * All functions take an open database (common/db.h) and report failure with
 * a return value and a message in the caller's err buffer; none logs. */
#ifndef PINGYI_AGG_H
#define PINGYI_AGG_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "forms/form.h"

/* ---- rules (rules.c): how a round grades, frozen when it opens ---- */

enum { AGG_MAX_GRADES = 8, AGG_GRADE_MAX = 32, AGG_MAX_GROUPS = 16, AGG_GROUP_MAX = 64 };
enum agg_rollup { AGG_POOL, AGG_MEAN };

typedef struct agg_grade_rule {
	char name[AGG_GRADE_MAX];   /* e.g. 先进 */
	double min_rate;            /* overall rate >= this ... */
	double min_score;           /* ... and score >= this */
} agg_grade_rule;

typedef struct agg_rules {
	double target;              /* a unit meets the target when rate >= target */
	int min_valid;              /* fewer valid ballots: not graded (未定) */
	int k_scores;               /* figures shown only from k valid ballots */
	int k_comments;             /* comments shown only from this many */
	double veto;                /* dissatisfied share above this: last grade */
	agg_grade_rule grades[AGG_MAX_GRADES]; /* top-down, first match wins */
	size_t n_grades;
	char fallback[AGG_GRADE_MAX];  /* when no rule matches (后进) */
	char ungraded[AGG_GRADE_MAX];  /* too few ballots (未定) */
	double cap;                 /* at most this share of a kind's graded units
	                               get the first grade; 0: no cap */
	enum agg_rollup rollup;
	struct {
		char group[AGG_GROUP_MAX];  /* voter group, e.g. 党员 */
		double weight;
	} weights[AGG_MAX_GROUPS];  /* none: the rate pools every group's answers */
	size_t n_weights;
} agg_rules;

/* DESIGN.md §2's defaults. */
void agg_rules_default(agg_rules *r);
/* The rules as a JSON object (exact doubles); caller frees. */
char *agg_rules_json(const agg_rules *r);
/* Read rules written by agg_rules_json. Returns 0 or -1 with err. */
int agg_rules_parse_json(const char *json, agg_rules *r, char *err, size_t errsize);
/* Read a rules file (format in docs/rules.md), starting from the defaults.
 * Returns 0, or -1 with err set to "file:line: why". */
int agg_rules_load(const char *path, agg_rules *r, char *err, size_t errsize);
/* The weight of a voter group, or -1 when the rules weight groups and this
 * one is not among them; 1 when the rules do not weight groups. */
double agg_rules_weight(const agg_rules *r, const char *group);

/* ---- tallies (tally.c, report.c) ---- */

/* The figures of one unit (or subtree, or question). Counts are always
 * filled; rate, score and share only mean something when shown. */
typedef struct agg_figures {
	int64_t ballots;            /* ballots cast */
	int64_t valid;              /* valid answers counted */
	int64_t satisfied;
	int64_t dissatisfied;
	int64_t points;             /* sum of points of valid answers */
	bool shown;                 /* valid >= k, and no figure shown elsewhere
	                               lets it be worked out: may be shown */
	double rate;                /* satisfied / valid; with group weights, the
	                               weighted rate Σ w·rate / Σ w (DESIGN.md §2) */
	double score;               /* points / valid (0..100) */
	double dissatisfied_share;  /* dissatisfied / valid */
	bool met;                   /* rate >= target */
	bool weighted_small;        /* hidden because a weighted voter group in it
	                               has fewer than k answers */
} agg_figures;

typedef struct agg_unit {
	char *id, *parent, *kind, *name_zh, *name_en, *token;
	int depth;                  /* 0 for the top of the listing */
	bool rated;                 /* the round rates this unit itself */
	bool has_subtree;           /* some descendant is rated */
	agg_figures own;            /* its own ballots (rated units) */
	agg_figures subtree;        /* it and its descendants (has_subtree) */
	agg_figures *questions;     /* own figures per form question */
	agg_figures *groups;        /* own figures per voter group (t->groups) */
	const char *grade;          /* own grade, NULL when not rated */
	int rank;                   /* 1 = best graded unit of its kind; 0 ungraded */
	bool has_trend;             /* rated in the previous round of the series */
	bool trend_shown;           /* both rates shown: delta means something */
	double delta;               /* rate now minus rate then */
	int laggards;               /* consecutive rounds graded fallback (后进),
	                               this one included; 0 when not now */
} agg_unit;

/* Participation (参评率) of one voter group in a code round. */
typedef struct agg_turnout {
	char *group;
	int64_t issued;             /* codes issued */
	int64_t used;               /* codes that rated at least one unit */
} agg_turnout;

typedef struct agg_tally {
	char *round, *series, *title_zh, *title_en, *state;
	bool code_round;
	agg_turnout *turnout;       /* per voter group, code rounds only */
	size_t n_turnout;
	char **groups;              /* voter groups with ballots, sorted */
	size_t n_groups;
	char *previous;             /* the previous closed round of the series, or NULL */
	int64_t closes_at;          /* 0 when none */
	agg_rules rules;
	form *form;
	agg_unit *units;            /* tree order: parents before children */
	size_t n_units;
} agg_tally;

/* Compute a round's tally from the counters (cost grows with units, not
 * ballots). Returns 0, or -1 with err (unknown round, corrupt rules). Free
 * with agg_tally_free. */
int agg_tally_load(sqlite3 *db, const char *round, agg_tally *t, char *err, size_t errsize);
/* The same tally computed from the raw ballots (cost grows with ballots). */
int agg_tally_recount(sqlite3 *db, const char *round, agg_tally *t, char *err, size_t errsize);
/* Compare the counters with the raw ballots, counter by counter; append
 * each difference to report. Returns the number of differences, -1 when
 * the round does not exist. */
int agg_recount_diff(sqlite3 *db, const char *round, buf *report);
void agg_tally_free(agg_tally *t);

/* Output. Figures under k are never written (shown as null / "—"). */
void agg_tally_json(const agg_tally *t, buf *out);
void agg_tally_csv(const agg_tally *t, buf *out);     /* UTF-8 BOM, CRLF */
void agg_tally_text(const agg_tally *t, buf *out);    /* aligned for a terminal */
void agg_tally_html(const agg_tally *t, enum form_lang lang, buf *out); /* a <section> */

/* ---- rounds (round.c) ---- */

typedef struct agg_round_spec {
	const char *id;             /* [a-z0-9][a-z0-9_-]{0,63} */
	const char *series;         /* may be "" */
	const char *title_zh, *title_en;
	const char *scope;          /* unit id, or NULL for the whole organisation */
	const char *form_path;      /* a form definition file (forms/) */
	int64_t closes_at;          /* unix time, 0 for none */
	bool codes_required;        /* only ballots with a code (测评码) count */
	const char *rules_path;     /* a rules file (docs/rules.md), or NULL for the defaults */
} agg_round_spec;

/* Create a draft round, freezing a copy of the form and the default rules. */
int agg_round_create(sqlite3 *db, const agg_round_spec *spec, char *err, size_t errsize);
/* Open a draft round: fix the units it rates and write "round.opened". */
int agg_round_open(sqlite3 *db, const char *round, char *err, size_t errsize);
/* Close an open round: write its final tally to the ledger as "round.closed". */
int agg_round_close(sqlite3 *db, const char *round, char *err, size_t errsize);
/* Close every open round whose closing time is at or before now. Returns
 * how many were closed; a failure is reported through err (the count then
 * covers the rounds closed before it) and later rounds are still tried. */
int agg_close_due(sqlite3 *db, int64_t now, char *err, size_t errsize);

/* ---- ballot codes (codes.c) ---- */

/* Make count new codes for a voter group of a draft or open round, valid
 * for the units of scope's subtree that the round rates. Stores only their
 * keyed hashes and writes "codes.issued" (the count, never a code) to the
 * ledger, all in one transaction. Returns a new array of count normalised
 * codes (each CODE_LEN + 1 bytes) that the caller frees, or NULL with err. */
char *agg_codes_issue(sqlite3 *db, const char *round, const char *group, const char *scope,
	int count, char *err, size_t errsize);

/* ---- the ledger (ledger.c) ---- */

/* Append an entry; call inside the caller's write transaction so that the
 * entry and the change it records commit together. body is a JSON text. */
int agg_ledger_append(sqlite3 *db, const char *kind, const char *round,
	const char *body, char *err, size_t errsize);
/* Check the whole chain, and that each closed round's recorded result
 * agrees with a recount of its ballots. Returns 0 when intact, the sequence
 * number of the first bad entry otherwise (a line explaining it is appended
 * to report), or -1 when the ledger cannot be read. */
int64_t agg_ledger_verify(sqlite3 *db, buf *report);

/* ---- exports (export.c) ---- */

/* The tables the office sends upward, from a loaded tally t of db's round.
 * A figure the tally hid (shown false) is written as the text "—", never
 * as a number; shares are cut (not rounded) to 0.01 % and scores to 0.1,
 * as every human display does. Names and texts are written as text, never
 * as formulas, whatever they start with.
 *
 * agg_export_xlsx writes a workbook to path (replacing it): sheets
 * 分类定级汇总表 (grades), 整改汇总表 (tickets, rectification records and
 * reviews of the round), 明细 (per question and voter group) and, for a
 * code round, 参评率. Returns 0, or -1 with err; on failure path may hold
 * part of a file, so callers write to a temporary name and rename it.
 *
 * agg_export_csv appends one table to out: which = "grades" (分类定级汇总表)
 * or "rectification" (整改汇总表); UTF-8 BOM, CRLF, every text cell through
 * %C. Returns 0, or -1 with err (unknown table, unreadable ledger, out's
 * limit reached). */
int agg_export_xlsx(sqlite3 *db, const agg_tally *t, const char *path, char *err, size_t errsize);
int agg_export_csv(sqlite3 *db, const agg_tally *t, const char *which, buf *out, char *err,
	size_t errsize);

/* ---- complaints (complaints.c): tickets, rectification, leaders' reviews ---- */

/* Complaint comments become tickets in batches: for each round at most one
 * batch per AGG_COMPLAINT_BATCH seconds, the first that long after the round
 * opened, so a ticket's number and times place its ballot no finer than
 * that (DESIGN.md §3). Names (who) are 1-AGG_WHO_MAX characters on one line;
 * notes and texts at most AGG_NOTE_MAX characters. */
enum { AGG_COMPLAINT_BATCH = 3600, AGG_WHO_MAX = 64, AGG_NOTE_MAX = 4000 };

/* Make a ticket for every complaint comment without one in the rounds whose
 * batch is due at now: state new, step "opened" by who, and a
 * "complaint.opened" ledger entry each (ticket, round, unit, who; never the
 * comment), all in one transaction. Returns how many were made, or -1 with
 * err (then none). *next, when not NULL, receives the earliest time a round
 * that was not due will be (0 when none is waiting). */
int agg_complaints_sync(sqlite3 *db, int64_t now, const char *who, int64_t *next,
	char *err, size_t errsize);

/* Why a ticket in state ("new", "in_progress", "resolved") may not move to
 * next, or NULL when it may: new -> in_progress; new or in_progress ->
 * resolved only with a note (what was done: the 整改 record); nothing
 * after resolved. The returned text is static. */
const char *agg_ticket_refusal(const char *state, const char *next, bool has_note);

/* Move a ticket to in_progress (note optional) or resolved (note
 * required), by who, at now. The ticket, its step and the ledger entry
 * ("complaint.progress" / "complaint.resolved": ticket, round, unit, who,
 * note) commit together. Returns 0, or -1 with err saying why not. */
int agg_ticket_take(sqlite3 *db, int64_t ticket, const char *who, const char *note,
	int64_t now, char *err, size_t errsize);
int agg_ticket_resolve(sqlite3 *db, int64_t ticket, const char *who, const char *note,
	int64_t now, char *err, size_t errsize);

typedef struct agg_ticket {
	int64_t id;
	char *round, *unit, *state;
	char *by;                   /* who took or resolved it; NULL while new */
	int64_t opened_at, taken_at, resolved_at;   /* unix time; 0: not yet */
	char *text;                 /* the complaint; NULL while withheld */
	int64_t comments;           /* the unit's comments in the round, all kinds */
	int k_comments;             /* the round's rule: text shown from this many */
} agg_ticket;

/* Tickets in number order, filtered by round, unit and state (each NULL for
 * any). A complaint's text is filled in only when its unit has at least the
 * round's k_comments comments (DESIGN.md §2). Returns 0 with a new array
 * (free with agg_tickets_free), or -1 with err (unknown round, unit or
 * state, unreadable rules). */
int agg_tickets_list(sqlite3 *db, const char *round, const char *unit, const char *state,
	agg_ticket **out, size_t *n, char *err, size_t errsize);
void agg_tickets_free(agg_ticket *t, size_t n);

/* Time to resolve of one unit's tickets in a round, in hours. */
typedef struct agg_resolve_time {
	char *unit;
	int64_t tickets, resolved;
	double median_hours, max_hours;   /* opened to resolved; 0 when none resolved */
	double oldest_open_hours;         /* the longest-waiting open ticket at now; 0 when none */
} agg_resolve_time;

/* Per unit with tickets in round, in the units' order. Returns 0 with a new
 * array (free with agg_resolve_times_free), or -1 with err (unknown round). */
int agg_resolve_times(sqlite3 *db, const char *round, int64_t now, agg_resolve_time **out,
	size_t *n, char *err, size_t errsize);
void agg_resolve_times_free(agg_resolve_time *t, size_t n);

/* A leader's review (点评) of a round, or of one unit in it when unit is
 * not NULL: "review.added" in the ledger (round, unit, who, text). A
 * rectification record (整改) of a unit outside complaints:
 * "rectification.recorded". The unit must be listed in the round's tally
 * (rated, or above a rated unit within the scope); the round must have
 * opened. Return the ledger entry's number, or -1 with err. */
int64_t agg_review_add(sqlite3 *db, const char *round, const char *unit, const char *who,
	const char *text, char *err, size_t errsize);
int64_t agg_rectify_add(sqlite3 *db, const char *round, const char *unit, const char *who,
	const char *text, char *err, size_t errsize);

#endif
