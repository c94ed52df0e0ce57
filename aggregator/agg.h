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

enum { AGG_MAX_GRADES = 8, AGG_GRADE_MAX = 32 };
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
	enum agg_rollup rollup;
} agg_rules;

/* DESIGN.md §2's defaults. */
void agg_rules_default(agg_rules *r);
/* The rules as a JSON object (exact doubles); caller frees. */
char *agg_rules_json(const agg_rules *r);
/* Read rules written by agg_rules_json. Returns 0 or -1 with err. */
int agg_rules_parse_json(const char *json, agg_rules *r, char *err, size_t errsize);

/* ---- tallies (tally.c, report.c) ---- */

/* The figures of one unit (or subtree, or question). Counts are always
 * filled; rate, score and share only mean something when shown. */
typedef struct agg_figures {
	int64_t ballots;            /* ballots cast */
	int64_t valid;              /* valid answers counted */
	int64_t satisfied;
	int64_t dissatisfied;
	int64_t points;             /* sum of points of valid answers */
	bool shown;                 /* valid >= k: figures may be shown */
	double rate;                /* satisfied / valid */
	double score;               /* points / valid (0..100) */
	double dissatisfied_share;  /* dissatisfied / valid */
	bool met;                   /* rate >= target */
} agg_figures;

typedef struct agg_unit {
	char *id, *parent, *kind, *name_zh, *name_en, *token;
	int depth;                  /* 0 for the top of the listing */
	bool rated;                 /* the round rates this unit itself */
	bool has_subtree;           /* some descendant is rated */
	agg_figures own;            /* its own ballots (rated units) */
	agg_figures subtree;        /* it and its descendants (has_subtree) */
	agg_figures *questions;     /* own figures per form question */
	const char *grade;          /* own grade, NULL when not rated */
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
/* Check the whole chain. Returns 0 when intact, the sequence number of the
 * first bad entry otherwise (a line explaining it is appended to report),
 * or -1 when the ledger cannot be read. */
int64_t agg_ledger_verify(sqlite3 *db, buf *report);

#endif
