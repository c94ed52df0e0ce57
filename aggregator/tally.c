/* tally.c - a round's figures, from the counters or from the raw ballots.
 *
 * The collector keeps a counter per (round, unit, voter group, question,
 * level) and a ballot count per (round, unit, group), updated in the same
 * transaction as each ballot; a tally reads those, O(units) rows. A recount
 * reads the ballots themselves and must agree. The arithmetic is DESIGN.md
 * §2: rate = satisfied / valid (weighted over voter groups when the rules
 * weight them), score = mean points of valid answers, both on the form's
 * overall question (all questions when it has none); grades top-down with
 * the dissatisfied veto, a minimum count and an optional cap on the first
 * grade; parents pool their subtree or average their children. Then no
 * figure is shown that rests on fewer than k answers, directly or as the
 * difference of shown figures (suppress()). Trends come from the previous
 * round's result as the ledger recorded it. Writing tallies out is report.c. */
#include "agg.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

/* One unit's answers from one voter group. */
typedef struct counts {
	int64_t n[FORM_MAX_QUESTIONS][FORM_MAX_LEVELS];
	int64_t ballots;
} counts;

typedef struct node {
	char *id, *parent, *kind, *name_zh, *name_en, *token;
	int up;                 /* index of the parent, or -1 */
	int depth;              /* distance from the top of the organisation */
	int unit;               /* index in the tally's units, or -1 */
	bool rated, listed, has_subtree;
	counts *own, *pool;     /* per voter group: its ballots; its subtree's */
} node;

typedef struct tree {
	node *nodes;
	size_t n;
	int *by_id;             /* node indexes sorted by id, for find() */
	size_t n_groups;
} tree;

/* ---- figures ---- */

static void add_question(agg_figures *f, const form *fm, const counts *c, size_t q)
{
	for (size_t l = 0; l < fm->n_levels; l++) {
		const form_level *lv = &fm->levels[l];
		int64_t n = c->n[q][l];
		if (lv->counts == FORM_INVALID)
			continue;
		f->valid += n;
		f->points += n * lv->points;
		f->satisfied += lv->counts == FORM_SATISFIED ? n : 0;
		f->dissatisfied += lv->counts == FORM_DISSATISFIED ? n : 0;
	}
}

/* Rates are ratios of counts (weighted: sums of them); in doubles a rate that
 * is exactly on a line can land a few ulps either side of it. */
#define EPS 1e-9
static bool at_least(double x, double line) { return x >= line - EPS; }

/* Figures over the given questions (q < 0: the headline questions) of the
 * per-group counts c[0..n_groups). */
static agg_figures figures_of(const agg_tally *t, const counts *c, int q)
{
	const form *fm = t->form;
	agg_figures f = { 0 };
	double wsum = 0, wrate = 0;
	bool small_group = false;   /* a weighted group with 0 < valid < k */
	for (size_t g = 0; g < t->n_groups; g++) {
		agg_figures one = { 0 };
		for (size_t k = 0; k < fm->n_questions; k++)
			if (q >= 0 ? (int)k == q : fm->overall < 0 || (int)k == fm->overall)
				add_question(&one, fm, &c[g], k);
		f.ballots += c[g].ballots;
		f.valid += one.valid;
		f.points += one.points;
		f.satisfied += one.satisfied;
		f.dissatisfied += one.dissatisfied;
		double w = agg_rules_weight(&t->rules, t->groups[g]);
		if (one.valid > 0 && w > 0) {
			wsum += w;
			wrate += w * (double)one.satisfied / (double)one.valid;
			small_group |= one.valid < t->rules.k_scores;
		}
	}
	if (f.valid > 0) {
		f.rate = t->rules.n_weights && wsum > 0 ? wrate / wsum : (double)f.satisfied / (double)f.valid;
		f.score = (double)f.points / (double)f.valid;
		f.dissatisfied_share = (double)f.dissatisfied / (double)f.valid;
		f.met = at_least(f.rate, t->rules.target);
	}
	/* A weighted rate moves by w / valid with each answer of a group: with
	 * few answers in one group it tells how that group voted. So with
	 * weights, a figure is shown only when every group in it has k answers. */
	f.shown = f.valid > 0 && f.valid >= t->rules.k_scores && !(t->rules.n_weights && small_group);
	f.weighted_small = t->rules.n_weights && small_group;
	return f;
}

static const char *grade_of(const agg_rules *rules, const agg_figures *f, size_t first)
{
	if (!f->shown || f->valid < rules->min_valid)
		return rules->ungraded;
	if (f->dissatisfied_share > rules->veto + EPS)
		return rules->fallback;
	for (size_t i = first; i < rules->n_grades; i++)
		if (at_least(f->rate, rules->grades[i].min_rate) && at_least(f->score, rules->grades[i].min_score))
			return rules->grades[i].name;
	return rules->fallback;
}

/* A unit's grade from its own figures, from grade rule first on. A rate
 * hidden only to protect a small weighted group still grades the unit: the
 * grade is the appraisal's result, and says far less. */
static const char *grade_unit(const agg_tally *t, const agg_unit *u, size_t first)
{
	agg_figures f = u->own;
	f.shown |= u->own.weighted_small && u->own.valid >= t->rules.k_scores;
	return grade_of(&t->rules, &f, first);
}

/* ---- loading ---- */

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

static int group_index(const agg_tally *t, const char *grp)
{
	for (size_t g = 0; g < t->n_groups; g++)
		if (strcmp(t->groups[g], grp) == 0)
			return (int)g;
	return -1;
}

static void load_groups(sqlite3 *db, agg_tally *t, bool raw)
{
	sqlite3_stmt *st = db_prepare(db, raw
		? "SELECT DISTINCT grp FROM ballots WHERE round = ? ORDER BY grp"
		: "SELECT DISTINCT grp FROM ballot_counts WHERE round = ? ORDER BY grp", "t", t->round);
	while (db_step(st) == SQLITE_ROW) {
		t->groups = xrealloc(t->groups, (t->n_groups + 1) * sizeof *t->groups);
		t->groups[t->n_groups++] = xstrdup(db_col_text(st, 0));
	}
	db_finalize(st);
}

static void load_units(sqlite3 *db, const agg_tally *t, tree *tr)
{
	sqlite3_stmt *st = db_prepare(db,
		"SELECT u.id, u.parent, u.kind, u.name_zh, u.name_en, u.token, ru.unit IS NOT NULL "
		"FROM units u LEFT JOIN round_units ru ON ru.unit = u.id AND ru.round = ? "
		"ORDER BY u.position", "t", t->round);
	size_t cap = 0;
	tr->n_groups = t->n_groups ? t->n_groups : 1;
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
		nd->unit = -1;
	}
	db_finalize(st);
	tr->by_id = xcalloc(tr->n ? tr->n : 1, sizeof *tr->by_id);
	for (size_t i = 0; i < tr->n; i++)
		tr->by_id[i] = (int)i;
	qsort_r(tr->by_id, tr->n, sizeof *tr->by_id, cmp_id, tr);
	for (size_t i = 0; i < tr->n; i++) {
		node *nd = &tr->nodes[i];
		nd->up = find(tr, nd->parent);
		/* Imports refuse loops, but a depth bound keeps a damaged file finite. */
		for (int a = nd->up; a >= 0 && nd->depth <= (int)tr->n; a = tr->nodes[a].up)
			nd->depth++;
		if (nd->rated) {
			nd->own = xcalloc(tr->n_groups, sizeof *nd->own);
			nd->pool = xcalloc(tr->n_groups, sizeof *nd->pool);
		}
	}
}

/* Fill each rated unit's per-group counts, from the counters or (raw) from
 * the ballots' answers. */
static void load_counts(sqlite3 *db, const agg_tally *t, tree *tr, bool raw)
{
	const form *fm = t->form;
	sqlite3_stmt *st = db_prepare(db, raw
		? "SELECT b.unit, b.grp, j.key, j.value, count(*) FROM ballots b, json_each(b.answers) j "
		  "WHERE b.round = ? GROUP BY 1, 2, 3, 4"
		: "SELECT unit, grp, question, level, n FROM counts WHERE round = ?", "t", t->round);
	while (db_step(st) == SQLITE_ROW) {
		int i = find(tr, db_col_text(st, 0)), g = group_index(t, db_col_text(st, 1));
		int l = form_level_index(fm, db_col_text(st, 3));
		if (i < 0 || g < 0 || l < 0 || !tr->nodes[i].own)
			continue;
		for (size_t q = 0; q < fm->n_questions; q++)
			if (strcmp(fm->questions[q].name, db_col_text(st, 2)) == 0)
				tr->nodes[i].own[g].n[q][l] += sqlite3_column_int64(st, 4);
	}
	db_finalize(st);
	st = db_prepare(db, raw
		? "SELECT unit, grp, count(*) FROM ballots WHERE round = ? GROUP BY 1, 2"
		: "SELECT unit, grp, n FROM ballot_counts WHERE round = ?", "t", t->round);
	while (db_step(st) == SQLITE_ROW) {
		int i = find(tr, db_col_text(st, 0)), g = group_index(t, db_col_text(st, 1));
		if (i >= 0 && g >= 0 && tr->nodes[i].own)
			tr->nodes[i].own[g].ballots += sqlite3_column_int64(st, 2);
	}
	db_finalize(st);
}

static void counts_add(counts *into, const counts *from, size_t n_groups)
{
	for (size_t g = 0; g < n_groups; g++) {
		for (int q = 0; q < FORM_MAX_QUESTIONS; q++)
			for (int l = 0; l < FORM_MAX_LEVELS; l++)
				into[g].n[q][l] += from[g].n[q][l];
		into[g].ballots += from[g].ballots;
	}
}

/* Mark rated units and their ancestors up to the scope as listed, and pool
 * each rated unit's counts into every listed ancestor. */
static void pool_up(tree *tr, int top)
{
	for (size_t i = 0; i < tr->n; i++) {
		node *nd = &tr->nodes[i];
		if (!nd->rated)
			continue;
		for (int a = (int)i, hops = 0; a >= 0 && hops <= nd->depth; a = tr->nodes[a].up, hops++) {
			node *an = &tr->nodes[a];
			an->listed = true;
			if (!an->pool)
				an->pool = xcalloc(tr->n_groups, sizeof *an->pool);
			counts_add(an->pool, nd->own, tr->n_groups);
			an->has_subtree |= a != (int)i;
			if (a == top)
				break;
		}
	}
}

static void emit(agg_tally *t, tree *tr, int idx, int depth)
{
	node *nd = &tr->nodes[idx];
	nd->unit = (int)t->n_units;
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
	u->groups = xcalloc(t->n_groups ? t->n_groups : 1, sizeof *u->groups);
	if (u->rated) {
		u->own = figures_of(t, nd->own, -1);
		for (size_t q = 0; q < t->form->n_questions; q++)
			u->questions[q] = figures_of(t, nd->own, (int)q);
		for (size_t g = 0; g < t->n_groups; g++) {
			agg_tally one = *t;   /* the figures of one group alone */
			one.groups = &t->groups[g];
			one.n_groups = 1;
			u->groups[g] = figures_of(&one, &nd->own[g], -1);
		}
		u->grade = grade_unit(t, u, 0);
	}
	if (u->has_subtree)
		u->subtree = figures_of(t, nd->pool, -1);
}

static void walk(agg_tally *t, tree *tr, int **children, const int *n_children, int idx, int depth)
{
	emit(t, tr, idx, depth);
	for (int c = 0; c < n_children[idx]; c++)
		walk(t, tr, children, n_children, children[idx][c], depth + 1);
}

/* ---- after the figures: mean roll-up, ranks and the cap ---- */

/* A unit's headline figures as a part of its parent: its subtree if it has
 * one, else its own. */
static agg_figures *as_part(agg_unit *u)
{
	return u->has_subtree ? &u->subtree : &u->own;
}

/* Children of each listed unit, as indexes into t->units. */
typedef struct kids {
	int **of;
	int *n;
} kids;

static kids kids_of(const agg_tally *t)
{
	kids k = { xcalloc(t->n_units + 1, sizeof *k.of), xcalloc(t->n_units + 1, sizeof *k.n) };
	for (size_t i = 0; i < t->n_units; i++)
		for (size_t p = i; p-- > 0;)
			if (t->units[i].parent && t->units[p].depth == t->units[i].depth - 1) {
				if (strcmp(t->units[p].id, t->units[i].parent) == 0) {
					k.of[p] = xrealloc(k.of[p], (size_t)(k.n[p] + 1) * sizeof **k.of);
					k.of[p][k.n[p]++] = (int)i;
				}
				break;
			}
	return k;
}

static void kids_free(kids *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(k->of[i]);
	free(k->of);
	free(k->n);
}

/* Mean roll-up: a parent's rate and score are the mean of its children's
 * (and its own, when it is rated), counts are summed. Bottom-up: children
 * follow their parent in t->units. */
static void mean_rollup(agg_tally *t, const kids *k)
{
	for (size_t i = t->n_units; i-- > 0;) {
		agg_unit *u = &t->units[i];
		if (!u->has_subtree)
			continue;
		agg_figures m = { 0 };
		double rate = 0, score = 0, dshare = 0;
		int parts = 0;
		for (int c = -1; c < k->n[i]; c++) {
			agg_figures *f = c < 0 ? (u->rated ? &u->own : NULL) : as_part(&t->units[k->of[i][c]]);
			if (!f)
				continue;
			m.ballots += f->ballots;
			m.valid += f->valid;
			m.satisfied += f->satisfied;
			m.dissatisfied += f->dissatisfied;
			m.points += f->points;
			if (f->valid > 0) {
				rate += f->rate, score += f->score, dshare += f->dissatisfied_share;
				parts++;
			}
		}
		if (parts) {
			m.rate = rate / parts, m.score = score / parts, m.dissatisfied_share = dshare / parts;
			m.met = at_least(m.rate, t->rules.target);
		}
		m.weighted_small = u->subtree.weighted_small;   /* its groups, pooled */
		m.shown = m.valid > 0 && m.valid >= t->rules.k_scores && !m.weighted_small;
		u->subtree = m;
	}
}

static int better(const agg_unit *a, const agg_unit *b)
{
	if (fabs(a->own.rate - b->own.rate) > EPS)
		return a->own.rate > b->own.rate ? -1 : 1;
	if (fabs(a->own.score - b->own.score) > EPS)
		return a->own.score > b->own.score ? -1 : 1;
	if (a->own.valid != b->own.valid)
		return a->own.valid > b->own.valid ? -1 : 1;
	return 0;
}

static int cmp_rank(const void *a, const void *b, void *arg)
{
	const agg_tally *t = arg;
	int c = better(&t->units[*(const int *)a], &t->units[*(const int *)b]);
	return c ? c : *(const int *)a - *(const int *)b;
}

/* Rank the graded units of each kind, and hold the first grade to the cap:
 * in rank order, a group of tied units keeps it only if all of them fit. */
static void rank_and_cap(agg_tally *t)
{
	int *order = xcalloc(t->n_units + 1, sizeof *order);
	bool *kind_done = xcalloc(t->n_units + 1, sizeof *kind_done);
	const char *top = t->rules.n_grades ? t->rules.grades[0].name : NULL;
	for (size_t i = 0; i < t->n_units; i++) {
		agg_unit *first = &t->units[i];
		if (!first->rated || kind_done[i])
			continue;
		size_t n = 0;
		for (size_t j = i; j < t->n_units; j++) {
			agg_unit *u = &t->units[j];
			if (!u->rated || strcmp(u->kind, first->kind) != 0)
				continue;
			kind_done[j] = true;
			if (strcmp(u->grade, t->rules.ungraded) != 0)
				order[n++] = (int)j;
		}
		if (n == 0)
			continue;
		qsort_r(order, n, sizeof *order, cmp_rank, t);
		size_t allowed = t->rules.cap > 0 ? (size_t)floor(t->rules.cap * (double)n + 1e-9) : n;
		size_t kept = 0;
		bool full = false;
		for (size_t a = 0; a < n;) {
			size_t b = a + 1, tops = 0;
			while (b < n && better(&t->units[order[a]], &t->units[order[b]]) == 0)
				b++;
			for (size_t k = a; k < b; k++) {
				t->units[order[k]].rank = (int)a + 1;
				tops += top && strcmp(t->units[order[k]].grade, top) == 0;
			}
			/* A tied group keeps the first grade only if all of it fits;
			 * once one does not, nobody ranked below it keeps it either. */
			if (tops && !full && kept + tops <= allowed) {
				kept += tops;
			} else if (tops) {
				full = true;
				for (size_t k = a; k < b; k++) {
					agg_unit *u = &t->units[order[k]];
					if (strcmp(u->grade, top) == 0)
						u->grade = grade_unit(t, u, 1);
				}
			}
			a = b;
		}
	}
	free(order);
	free(kind_done);
}

/* ---- trends: the previous rounds of the series, as the ledger has them ---- */

static char *previous_round(sqlite3 *db, const char *round)
{
	/* A strict order (time, then id) so two rounds opened in the same second
	 * cannot each be the other's previous one. */
	return db_text(db, "SELECT p.id FROM rounds p, rounds r WHERE r.id = ? AND r.series <> '' "
		"AND p.series = r.series AND p.state = 'closed' "
		"AND (coalesce(p.opened_at, 0), p.id) < (coalesce(r.opened_at, 9e18), r.id) "
		"ORDER BY coalesce(p.opened_at, 0) DESC, p.id DESC LIMIT 1", "t", round);
}

/* The closed result of a round as recorded in the ledger, or NULL. */
static json_t *recorded_result(sqlite3 *db, const char *round)
{
	char *body = db_text(db, "SELECT body FROM ledger WHERE kind = 'round.closed' AND round = ? "
		"ORDER BY seq DESC LIMIT 1", "t", round);
	json_t *o = body ? json_loads(body, 0, NULL) : NULL;
	free(body);
	return o;
}

static json_t *unit_in(json_t *result, const char *id)
{
	size_t i;
	json_t *u;
	json_array_foreach(json_object_get(result, "units"), i, u)
		if (str_eq(json_string_value(json_object_get(u, "id")), id))
			return u;
	return NULL;
}

enum { TREND_ROUNDS = 20 };

static void load_trends(sqlite3 *db, agg_tally *t)
{
	json_t *past[TREND_ROUNDS];
	size_t n = 0;
	t->previous = previous_round(db, t->round);
	char *r = t->previous ? xstrdup(t->previous) : NULL;
	while (r && n < TREND_ROUNDS && (past[n] = recorded_result(db, r)) != NULL) {
		n++;
		char *older = previous_round(db, r);
		free(r);
		r = older;
	}
	free(r);
	for (size_t i = 0; i < t->n_units && n; i++) {
		agg_unit *u = &t->units[i];
		json_t *then = u->rated ? unit_in(past[0], u->id) : NULL;
		json_t *rate = json_object_get(json_object_get(then, "own"), "rate");
		if (!then || !json_is_object(json_object_get(then, "own")))
			continue;
		u->has_trend = true;
		u->trend_shown = u->own.shown && json_is_number(rate);
		u->delta = u->trend_shown ? u->own.rate - json_number_value(rate) : 0;
	}
	for (size_t i = 0; i < t->n_units; i++) {
		agg_unit *u = &t->units[i];
		if (!u->grade || strcmp(u->grade, t->rules.fallback) != 0)
			continue;
		u->laggards = 1;
		for (size_t k = 0; k < n; k++) {
			json_t *then = unit_in(past[k], u->id);
			if (!str_eq(json_string_value(json_object_get(then, "grade")), t->rules.fallback))
				break;
			u->laggards++;
		}
	}
	for (size_t k = 0; k < n; k++)
		json_decref(past[k]);
}

/* ---- k-anonymity by difference ---- */

static bool hidden(const agg_figures *f) { return f->valid > 0 && !f->shown; }

/* A total shown next to its parts gives away the sum of its hidden parts
 * (total minus the shown ones). That is harmless only when no part is
 * hidden, or when two or more are and together they rest on at least k
 * answers. Otherwise hide the smallest shown part, or the total when none
 * is left (the caller loops until nothing changes). Returns true when it
 * hid something. */
static bool protect(agg_figures *total, agg_figures **parts, size_t n, int k)
{
	size_t n_hidden = 0;
	int64_t hidden_valid = 0;
	agg_figures *smallest = NULL;
	if (!total->shown)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (hidden(parts[i])) {
			n_hidden++;
			hidden_valid += parts[i]->valid;
		} else if (parts[i]->shown && (!smallest || parts[i]->valid < smallest->valid)) {
			smallest = parts[i];
		}
	}
	if (n_hidden == 0 || (n_hidden > 1 && hidden_valid >= k))
		return false;
	if (!smallest)
		total->shown = false;
	else
		smallest->shown = false;
	return true;
}

/* The hidden own figures under unit i that no shown cell below it covers:
 * shown as i's subtree total, they are what the total minus every shown
 * figure inside it gives away (n of them, valid answers in all). */
static void uncovered(const agg_tally *t, const kids *k, size_t i, bool top, size_t *n, int64_t *valid)
{
	const agg_unit *u = &t->units[i];
	if (!top && u->has_subtree && u->subtree.shown)
		return;
	if (u->rated && hidden(&u->own)) {
		(*n)++;
		*valid += u->own.valid;
	}
	for (int c = 0; c < k->n[i]; c++)
		uncovered(t, k, (size_t)k->of[i][c], false, n, valid);
}

/* Hide figures until no hidden one, nor a sum of hidden ones under k, can
 * be worked out from shown ones: a parent's subtree against every shown
 * figure inside it (the parent's roll-up is hidden, so units keep their own
 * figures), and a unit against its voter groups (the smallest other group
 * is hidden, so the unit keeps its headline figure). */
static void suppress(agg_tally *t, const kids *k)
{
	agg_figures **parts = xcalloc(t->n_units + t->n_groups + 2, sizeof *parts);
	/* A pooled, unweighted roll-up minus what is shown gives one equation:
	 * the hidden parts' sum. Weighted or averaged roll-ups give the hidden
	 * parts' figures with different coefficients, which small counts can
	 * solve; those roll-ups are shown only when nothing beneath is hidden. */
	bool strict = t->rules.n_weights > 0 || t->rules.rollup == AGG_MEAN;
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < t->n_units; i++) {
			agg_unit *u = &t->units[i];
			size_t n = 0;
			int64_t valid = 0;
			if (u->has_subtree && u->subtree.shown) {
				uncovered(t, k, i, true, &n, &valid);
				if (n == 1 || (n > 1 && (strict || valid < t->rules.k_scores))) {
					u->subtree.shown = false;
					changed = true;
				}
			}
			if (u->rated && t->n_groups > 1) {
				for (n = 0; n < t->n_groups; n++)
					parts[n] = &u->groups[n];
				changed |= protect(&u->own, parts, n, t->rules.k_scores);
			}
		}
	}
	free(parts);
	for (size_t i = 0; i < t->n_units; i++) {
		agg_unit *u = &t->units[i];
		u->trend_shown &= u->own.shown;
		if (!u->own.shown && u->rated && u->own.valid >= t->rules.k_scores)
			continue;   /* hidden only to protect others: keeps its grade */
		if (!u->own.shown && u->grade) {
			u->grade = t->rules.ungraded;
			u->rank = 0;
		}
	}
}

/* ---- putting it together ---- */

static void tree_free(tree *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		node *nd = &tr->nodes[i];
		free(nd->id); free(nd->parent); free(nd->kind);
		free(nd->name_zh); free(nd->name_en); free(nd->token);
		free(nd->own); free(nd->pool);
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

static int load(sqlite3 *db, const char *round, bool raw, agg_tally *t, char *err, size_t errsize)
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
	load_groups(db, t, raw);
	tree tr = { 0 };
	load_units(db, t, &tr);
	load_counts(db, t, &tr, raw);
	int top = find(&tr, scope);
	free(scope);
	pool_up(&tr, top);

	/* Children of listed nodes, in import order, for the depth-first walk. */
	int **children = xcalloc(tr.n + 1, sizeof *children);
	int *n_children = xcalloc(tr.n + 1, sizeof *n_children);
	for (size_t i = 0; i < tr.n; i++) {
		int up = tr.nodes[i].up;
		if (!tr.nodes[i].listed || (int)i == top || up < 0)
			continue;
		children[up] = xrealloc(children[up], (size_t)(n_children[up] + 1) * sizeof **children);
		children[up][n_children[up]++] = (int)i;
	}
	t->units = xcalloc(tr.n + 1, sizeof *t->units);
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

	kids k = kids_of(t);
	if (t->rules.rollup == AGG_MEAN)
		mean_rollup(t, &k);
	rank_and_cap(t);
	load_trends(db, t);
	suppress(t, &k);
	kids_free(&k, t->n_units + 1);
	return 0;
}

int agg_tally_load(sqlite3 *db, const char *round, agg_tally *t, char *err, size_t errsize)
{
	return load(db, round, false, t, err, errsize);
}

int agg_tally_recount(sqlite3 *db, const char *round, agg_tally *t, char *err, size_t errsize)
{
	return load(db, round, true, t, err, errsize);
}

int agg_recount_diff(sqlite3 *db, const char *round, buf *report)
{
	if (db_int(db, 0, "SELECT count(*) FROM rounds WHERE id = ?", "t", round) == 0)
		return -1;
	int diffs = 0;
	sqlite3_stmt *st = db_prepare(db,
		"SELECT unit, grp, question, level, sum(kept), sum(raw) FROM ("
		" SELECT unit, grp, question, level, n AS kept, 0 AS raw FROM counts WHERE round = ?1"
		" UNION ALL SELECT b.unit, b.grp, j.key, j.value, 0, count(*)"
		"  FROM ballots b, json_each(b.answers) j WHERE b.round = ?1 GROUP BY 1, 2, 3, 4)"
		" GROUP BY 1, 2, 3, 4 HAVING sum(kept) <> sum(raw) ORDER BY 1, 2, 3, 4", "t", round);
	while (db_step(st) == SQLITE_ROW && ++diffs)
		buf_fmt(report, "unit %s, group %s, %s = %s: the counter says %lld, the ballots %lld\n",
			db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_text(st, 3),
			(long long)sqlite3_column_int64(st, 4), (long long)sqlite3_column_int64(st, 5));
	db_finalize(st);
	st = db_prepare(db,
		"WITH raw AS (SELECT unit, grp, count(*) AS n FROM ballots WHERE round = ?1 GROUP BY 1, 2),"
		" kept AS (SELECT unit, grp, n FROM ballot_counts WHERE round = ?1)"
		" SELECT coalesce(k.unit, r.unit), coalesce(k.grp, r.grp), coalesce(k.n, 0), coalesce(r.n, 0)"
		" FROM kept k FULL JOIN raw r ON k.unit = r.unit AND k.grp = r.grp"
		" WHERE coalesce(k.n, 0) <> coalesce(r.n, 0) ORDER BY 1, 2", "t", round);
	while (db_step(st) == SQLITE_ROW && ++diffs)
		buf_fmt(report, "unit %s, group %s: the ballot counter says %lld, the ballots %lld\n",
			db_col_text(st, 0), db_col_text(st, 1), (long long)sqlite3_column_int64(st, 2),
			(long long)sqlite3_column_int64(st, 3));
	db_finalize(st);
	return diffs;
}

void agg_tally_free(agg_tally *t)
{
	for (size_t i = 0; i < t->n_units; i++) {
		agg_unit *u = &t->units[i];
		free(u->id); free(u->parent); free(u->kind);
		free(u->name_zh); free(u->name_en); free(u->token);
		free(u->questions); free(u->groups);
	}
	free(t->units);
	for (size_t i = 0; i < t->n_turnout; i++)
		free(t->turnout[i].group);
	free(t->turnout);
	for (size_t i = 0; i < t->n_groups; i++)
		free(t->groups[i]);
	free(t->groups);
	free(t->previous);
	free(t->round); free(t->series); free(t->title_zh); free(t->title_en); free(t->state);
	if (t->form)
		form_free(t->form);
	memset(t, 0, sizeof *t);
}
