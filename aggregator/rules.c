/* rules.c - a round's appraisal rules: defaults and their JSON form.
 *
 * The JSON form is what rounds.rules stores and what the ledger records
 * when a round opens; doubles are written so that they read back exactly,
 * which keeps a threshold such as 1/3 the same number before and after. */
#include "agg.h"

#include <jansson.h>
#include <string.h>

#include "common/fmt.h"
#include "common/str.h"

static void add_grade(agg_rules *r, const char *name, double min_rate, double min_score)
{
	agg_grade_rule *g = &r->grades[r->n_grades++];
	str_copy(g->name, sizeof g->name, name);
	g->min_rate = min_rate;
	g->min_score = min_score;
}

void agg_rules_default(agg_rules *r)
{
	memset(r, 0, sizeof *r);
	r->target = 0.95;
	r->min_valid = 5;
	r->k_scores = 5;
	r->k_comments = 10;
	r->veto = 1.0 / 3.0;
	add_grade(r, "先进", 0.95, 90);
	add_grade(r, "较好", 0.90, 0);
	add_grade(r, "一般", 0.80, 0);
	str_copy(r->fallback, sizeof r->fallback, "后进");
	str_copy(r->ungraded, sizeof r->ungraded, "未定");
	r->rollup = AGG_POOL;
}

char *agg_rules_json(const agg_rules *r)
{
	json_t *grades = json_array();
	for (size_t i = 0; i < r->n_grades; i++)
		json_array_append_new(grades, json_pack("{s:s, s:f, s:f}", "name", r->grades[i].name,
			"min_rate", r->grades[i].min_rate, "min_score", r->grades[i].min_score));
	json_t *o = json_pack("{s:f, s:i, s:i, s:i, s:f, s:o, s:s, s:s, s:s}",
		"target", r->target, "min_valid", r->min_valid, "k_scores", r->k_scores,
		"k_comments", r->k_comments, "veto_dissatisfied", r->veto, "grades", grades,
		"fallback", r->fallback, "ungraded", r->ungraded,
		"rollup", r->rollup == AGG_MEAN ? "mean" : "pool");
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int agg_rules_parse_json(const char *text, agg_rules *r, char *err, size_t errsize)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	json_t *grades = NULL;
	const char *fallback = NULL, *ungraded = NULL, *rollup = NULL;
	memset(r, 0, sizeof *r);
	if (!o || json_unpack_ex(o, &je, JSON_STRICT, "{s:F, s:i, s:i, s:i, s:F, s:o, s:s, s:s, s:s}",
			"target", &r->target, "min_valid", &r->min_valid, "k_scores", &r->k_scores,
			"k_comments", &r->k_comments, "veto_dissatisfied", &r->veto, "grades", &grades,
			"fallback", &fallback, "ungraded", &ungraded, "rollup", &rollup) != 0) {
		fmt_into(err, errsize, "the stored rules are not readable: %s", je.text);
		json_decref(o);
		return -1;
	}
	size_t i;
	json_t *g;
	json_array_foreach(grades, i, g) {
		const char *name;
		if (i == AGG_MAX_GRADES || json_unpack_ex(g, &je, JSON_STRICT, "{s:s, s:F, s:F}", "name", &name,
				"min_rate", &r->grades[i].min_rate, "min_score", &r->grades[i].min_score) != 0) {
			fmt_into(err, errsize, "the stored rules have a bad grade: %s", je.text);
			json_decref(o);
			return -1;
		}
		str_copy(r->grades[i].name, sizeof r->grades[i].name, name);
		r->n_grades = i + 1;
	}
	str_copy(r->fallback, sizeof r->fallback, fallback);
	str_copy(r->ungraded, sizeof r->ungraded, ungraded);
	r->rollup = strcmp(rollup, "mean") == 0 ? AGG_MEAN : AGG_POOL;
	json_decref(o);
	return 0;
}
