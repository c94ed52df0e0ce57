/* tally.c - a round's figures, computed from the counters.
 *
 * The collector keeps a counter per (round, unit, voter group, question,
 * level) and a ballot count per (round, unit, group), updated in the same
 * transaction as each ballot; so this reads O(units) rows, never the ballots.
 * The arithmetic is DESIGN.md §2: rate = satisfied / valid, score = mean
 * points of valid answers, both taken on the form's overall question (on all
 * questions when the form has none); parents pool their subtree. Writing the
 * figures out (JSON, CSV, text, HTML) is in report.c. */
#include "agg.h"

#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"

/* Raw counters of one unit: per question and level, plus ballots. */
typedef struct raw {
	int64_t n[FORM_MAX_QUESTIONS][FORM_MAX_LEVELS];
	int64_t ballots;
} raw;

static void raw_add(raw *into, const raw *from)
{
	for (int q = 0; q < FORM_MAX_QUESTIONS; q++)
		for (int l = 0; l < FORM_MAX_LEVELS; l++)
			into->n[q][l] += from->n[q][l];
	into->ballots += from->ballots;
}

static void figures_add_question(agg_figures *f, const form *fm, const raw *r, size_t q)
{
	for (size_t l = 0; l < fm->n_levels; l++) {
		int64_t n = r->n[q][l];
		const form_level *lv = &fm->levels[l];
		if (lv->counts == FORM_INVALID)
			continue;
		f->valid += n;
		f->points += n * lv->points;
		if (lv->counts == FORM_SATISFIED)
			f->satisfied += n;
		if (lv->counts == FORM_DISSATISFIED)
			f->dissatisfied += n;
	}
}

static void figures_finish(agg_figures *f, const agg_rules *rules)
{
	f->shown = f->valid >= rules->k_scores && f->valid > 0;
	if (f->valid > 0) {
		f->rate = (double)f->satisfied / (double)f->valid;
		f->score = (double)f->points / (double)f->valid;
		f->dissatisfied_share = (double)f->dissatisfied / (double)f->valid;
		f->met = f->rate >= rules->target;
	}
}

/* The unit-level figures: the overall question, or all questions. */
static agg_figures overall_figures(const agg_tally *t, const raw *r)
{
	agg_figures f = { .ballots = r->ballots };
	for (size_t q = 0; q < t->form->n_questions; q++)
		if (t->form->overall < 0 || (int)q == t->form->overall)
			figures_add_question(&f, t->form, r, q);
	figures_finish(&f, &t->rules);
	return f;
}

static const char *grade(const agg_rules *rules, const agg_figures *f)
{
	if (!f->shown || f->valid < rules->min_valid)
		return rules->ungraded;
	if (f->dissatisfied_share > rules->veto)
		return rules->fallback;
	for (size_t i = 0; i < rules->n_grades; i++)
		if (f->rate >= rules->grades[i].min_rate && f->score >= rules->grades[i].min_score)
			return rules->grades[i].name;
	return rules->fallback;
}

/* ---- loading ---- */

typedef struct node {
	char *id, *parent, *kind, *name_zh, *name_en, *token;
	int up;             /* index of the parent, or -1 */
	int depth;          /* distance from the top of the organisation */
	bool rated, listed, has_subtree;
	raw own, pool;      /* its ballots; its subtree's (rated units only) */
} node;

typedef struct tree {
	node *nodes;
	size_t n;
	int *by_id;         /* node indexes sorted by id, for find() */
} tree;

static int cmp_id(const void *a, const void *b, void *arg)
{
	const tree *tr = arg;
	return strcmp(tr->nodes[*(const int *)a].id, tr->nodes[*(const int *)b].id);
}

static int find(const tree *tr, const char *id)
{
	size_t lo = 0, hi = id ? tr->n : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(tr->nodes[tr->by_id[mid]].id, id);
		if (c == 0)
			return tr->by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void load_units(sqlite3 *db, const char *round, tree *tr)
{
	sqlite3_stmt *st = db_prepare(db,
		"SELECT u.id, u.parent, u.kind, u.name_zh, u.name_en, u.token, ru.unit IS NOT NULL "
		"FROM units u LEFT JOIN round_units ru ON ru.unit = u.id AND ru.round = ? "
		"ORDER BY u.position", "t", round);
	size_t cap = 0;
	while (db_step(st) == SQLITE_ROW) {
		if (tr->n == cap) {
			cap = cap ? 2 * cap : 64;
			tr->nodes = xrealloc(tr->nodes, cap * sizeof *tr->nodes);
		}
		node *nd = &tr->nodes[tr->n++];
		memset(nd, 0, sizeof *nd);
		nd->id = xstrdup(db_col_text(st, 0));
		nd->parent = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, 1));
		nd->kind = xstrdup(db_col_text(st, 2));
		nd->name_zh = xstrdup(db_col_text(st, 3));
		nd->name_en = xstrdup(db_col_text(st, 4));
		nd->token = xstrdup(db_col_text(st, 5));
		nd->rated = sqlite3_column_int(st, 6);
	}
	db_finalize(st);
	tr->by_id = xcalloc(tr->n, sizeof *tr->by_id);
	for (size_t i = 0; i < tr->n; i++)
		tr->by_id[i] = (int)i;
	qsort_r(tr->by_id, tr->n, sizeof *tr->by_id, cmp_id, tr);
	for (size_t i = 0; i < tr->n; i++)
		tr->nodes[i].up = find(tr, tr->nodes[i].parent);
	/* Imports refuse cycles, but a depth bound keeps a damaged file finite. */
	for (size_t i = 0; i < tr->n; i++)
		for (int a = tr->nodes[i].up; a >= 0 && tr->nodes[i].depth <= (int)tr->n; a = tr->nodes[a].up)
			tr->nodes[i].depth++;
}

static void load_counts(sqlite3 *db, const char *round, const form *fm, tree *tr)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT unit, question, level, sum(n) FROM counts "
		"WHERE round = ? GROUP BY unit, question, level", "t", round);
	while (db_step(st) == SQLITE_ROW) {
		int i = find(tr, db_col_text(st, 0));
		int l = form_level_index(fm, db_col_text(st, 2));
		for (size_t q = 0; i >= 0 && l >= 0 && q < fm->n_questions; q++)
			if (strcmp(fm->questions[q].name, db_col_text(st, 1)) == 0)
				tr->nodes[i].own.n[q][l] += sqlite3_column_int64(st, 3);
	}
	db_finalize(st);
	st = db_prepare(db, "SELECT unit, sum(n) FROM ballot_counts WHERE round = ? GROUP BY unit",
		"t", round);
	while (db_step(st) == SQLITE_ROW) {
		int i = find(tr, db_col_text(st, 0));
		if (i >= 0)
			tr->nodes[i].own.ballots += sqlite3_column_int64(st, 1);
	}
	db_finalize(st);
}

/* Mark rated units and their ancestors up to the scope as listed, and pool
 * each rated unit's counters into every listed ancestor. */
static void pool_up(tree *tr, int top)
{
	for (size_t i = 0; i < tr->n; i++) {
		node *nd = &tr->nodes[i];
		if (!nd->rated)
			continue;
		for (int a = (int)i, hops = 0; a >= 0 && hops <= nd->depth; a = tr->nodes[a].up, hops++) {
			tr->nodes[a].listed = true;
			raw_add(&tr->nodes[a].pool, &nd->own);
			tr->nodes[a].has_subtree |= a != (int)i;
			if (a == top)
				break;
		}
	}
}

static void emit(agg_tally *t, tree *tr, int idx, int depth)
{
	node *nd = &tr->nodes[idx];
	agg_unit *u = &t->units[t->n_units++];
	u->id = xstrdup(nd->id);
	u->parent = nd->parent ? xstrdup(nd->parent) : NULL;
	u->kind = xstrdup(nd->kind);
	u->name_zh = xstrdup(nd->name_zh);
	u->name_en = xstrdup(nd->name_en);
	u->token = xstrdup(nd->token);
	u->depth = depth;
	u->rated = nd->rated;
	u->has_subtree = nd->has_subtree;
	u->questions = xcalloc(t->form->n_questions, sizeof *u->questions);
	if (u->rated) {
		u->own = overall_figures(t, &nd->own);
		for (size_t q = 0; q < t->form->n_questions; q++) {
			agg_figures *f = &u->questions[q];
			f->ballots = nd->own.ballots;
			figures_add_question(f, t->form, &nd->own, q);
			figures_finish(f, &t->rules);
		}
		u->grade = grade(&t->rules, &u->own);
	}
	if (u->has_subtree)
		u->subtree = overall_figures(t, &nd->pool);
}

/* Depth-first from each top node, children in import order. */
static void walk(agg_tally *t, tree *tr, int **children, const int *n_children, int idx, int depth)
{
	emit(t, tr, idx, depth);
	for (int c = 0; c < n_children[idx]; c++)
		walk(t, tr, children, n_children, children[idx][c], depth + 1);
}

static void tree_free(tree *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		node *nd = &tr->nodes[i];
		free(nd->id); free(nd->parent); free(nd->kind);
		free(nd->name_zh); free(nd->name_en); free(nd->token);
	}
	free(tr->nodes);
	free(tr->by_id);
}

static int load_round(sqlite3 *db, const char *round, agg_tally *t, char **scope,
	char *err, size_t errsize)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT series, title_zh, title_en, state, "
		"coalesce(closes_at, 0), form_src, rules, scope, mode FROM rounds WHERE id = ?", "t", round);
	if (db_step(st) != SQLITE_ROW) {
		db_finalize(st);
		fmt_into(err, errsize, "no round \"%s\" (see: pingyi round list)", round);
		return -1;
	}
	t->round = xstrdup(round);
	t->series = xstrdup(db_col_text(st, 0));
	t->title_zh = xstrdup(db_col_text(st, 1));
	t->title_en = xstrdup(db_col_text(st, 2));
	t->state = xstrdup(db_col_text(st, 3));
	t->closes_at = sqlite3_column_int64(st, 4);
	*scope = sqlite3_column_type(st, 7) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, 7));
	t->code_round = strcmp(db_col_text(st, 8), "code") == 0;
	t->form = form_parse(db_col_text(st, 5), round, err, errsize);
	int rc = t->form ? agg_rules_parse_json(db_col_text(st, 6), &t->rules, err, errsize) : -1;
	db_finalize(st);
	return rc;
}

/* Codes issued and used per voter group: the participation rate. */
static void load_turnout(sqlite3 *db, agg_tally *t)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT c.grp, count(*), "
		"sum(EXISTS (SELECT 1 FROM code_uses u WHERE u.hash = c.hash)) "
		"FROM codes c WHERE c.round = ? GROUP BY c.grp ORDER BY c.grp", "t", t->round);
	while (db_step(st) == SQLITE_ROW) {
		t->turnout = xrealloc(t->turnout, (t->n_turnout + 1) * sizeof *t->turnout);
		t->turnout[t->n_turnout++] = (agg_turnout){ xstrdup(db_col_text(st, 0)),
			sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2) };
	}
	db_finalize(st);
}

int agg_tally_load(sqlite3 *db, const char *round, agg_tally *t, char *err, size_t errsize)
{
	memset(t, 0, sizeof *t);
	char *scope = NULL;
	if (load_round(db, round, t, &scope, err, errsize) != 0) {
		free(scope);
		agg_tally_free(t);
		return -1;
	}
	if (t->code_round)
		load_turnout(db, t);
	tree tr = { 0 };
	load_units(db, round, &tr);
	load_counts(db, round, t->form, &tr);
	int top = find(&tr, scope);
	free(scope);
	pool_up(&tr, top);

	/* Children lists of listed nodes, in import order. */
	int **children = xcalloc(tr.n, sizeof *children);
	int *n_children = xcalloc(tr.n, sizeof *n_children);
	for (size_t i = 0; i < tr.n; i++) {
		int up = tr.nodes[i].up;
		if (!tr.nodes[i].listed || (int)i == top || up < 0)
			continue;
		children[up] = xrealloc(children[up], (size_t)(n_children[up] + 1) * sizeof **children);
		children[up][n_children[up]++] = (int)i;
	}
	t->units = xcalloc(tr.n ? tr.n : 1, sizeof *t->units);
	for (size_t i = 0; i < tr.n; i++) {
		bool is_top = top >= 0 ? (int)i == top : tr.nodes[i].up < 0;
		if (tr.nodes[i].listed && is_top)
			walk(t, &tr, children, n_children, (int)i, 0);
	}
	for (size_t i = 0; i < tr.n; i++)
		free(children[i]);
	free(children);
	free(n_children);
	tree_free(&tr);
	return 0;
}

void agg_tally_free(agg_tally *t)
{
	for (size_t i = 0; i < t->n_units; i++) {
		agg_unit *u = &t->units[i];
		free(u->id); free(u->parent); free(u->kind);
		free(u->name_zh); free(u->name_en); free(u->token);
		free(u->questions);
	}
	free(t->units);
	for (size_t i = 0; i < t->n_turnout; i++)
		free(t->turnout[i].group);
	free(t->turnout);
	free(t->round); free(t->series); free(t->title_zh); free(t->title_en); free(t->state);
	if (t->form)
		form_free(t->form);
	memset(t, 0, sizeof *t);
}
