/* rules.c - a round's appraisal rules: defaults and their JSON form.
 *
 * The JSON form is what rounds.rules stores and what the ledger records
 * when a round opens; doubles are written so that they read back exactly,
 * which keeps a threshold such as 1/3 the same number before and after. */
#include "agg.h"

#include <jansson.h>
#include <string.h>

#include "common/fmt.h"
#include "common/ini.h"
#include "common/mem.h"
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
	json_t *weights = json_object();
	for (size_t i = 0; i < r->n_weights; i++)
		json_object_set_new(weights, r->weights[i].group, json_real(r->weights[i].weight));
	json_t *o = json_pack("{s:f, s:i, s:i, s:i, s:f, s:o, s:s, s:s, s:f, s:s, s:o}",
		"target", r->target, "min_valid", r->min_valid, "k_scores", r->k_scores,
		"k_comments", r->k_comments, "veto_dissatisfied", r->veto, "grades", grades,
		"fallback", r->fallback, "ungraded", r->ungraded, "cap", r->cap,
		"rollup", r->rollup == AGG_MEAN ? "mean" : "pool", "weights", weights);
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int agg_rules_parse_json(const char *text, agg_rules *r, char *err, size_t errsize)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	json_t *grades = NULL, *weights = NULL;
	const char *fallback = NULL, *ungraded = NULL, *rollup = NULL;
	memset(r, 0, sizeof *r);
	/* cap and weights came later: rounds made before them have neither. */
	if (!o || json_unpack_ex(o, &je, JSON_STRICT, "{s:F, s:i, s:i, s:i, s:F, s:o, s:s, s:s, s?F, s:s, s?o}",
			"target", &r->target, "min_valid", &r->min_valid, "k_scores", &r->k_scores,
			"k_comments", &r->k_comments, "veto_dissatisfied", &r->veto, "grades", &grades,
			"fallback", &fallback, "ungraded", &ungraded, "cap", &r->cap, "rollup", &rollup,
			"weights", &weights) != 0) {
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
	const char *group;
	json_object_foreach(weights, group, g) {
		if (r->n_weights == AGG_MAX_GROUPS || !json_is_number(g)) {
			fmt_into(err, errsize, "the stored rules have a bad group weight");
			json_decref(o);
			return -1;
		}
		str_copy(r->weights[r->n_weights].group, AGG_GROUP_MAX, group);
		r->weights[r->n_weights++].weight = json_number_value(g);
	}
	str_copy(r->fallback, sizeof r->fallback, fallback);
	str_copy(r->ungraded, sizeof r->ungraded, ungraded);
	r->rollup = strcmp(rollup, "mean") == 0 ? AGG_MEAN : AGG_POOL;
	json_decref(o);
	return 0;
}

double agg_rules_weight(const agg_rules *r, const char *group)
{
	if (r->n_weights == 0)
		return 1;
	for (size_t i = 0; i < r->n_weights; i++)
		if (strcmp(r->weights[i].group, group) == 0)
			return r->weights[i].weight;
	return -1;
}

/* ---- rules files ---- */

typedef struct reader {
	agg_rules *r;
	bool grades_given;          /* the file's [grade] sections replace the defaults */
	bool seen[16];              /* keys of [rules] given so far */
} reader;

static const char *const rule_keys[] = {
	"target", "min_valid", "k_scores", "k_comments", "veto_dissatisfied", "cap",
	"rollup", "fallback", "ungraded", NULL,
};

/* A share: a decimal ("0.95") or a fraction ("1/3"), within [min, max]. */
static bool parse_share(const char *s, double min, double max, double *out)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return str_to_double(s, min, max, out);
	char num[32];
	double a, b;
	if ((size_t)(slash - s) >= sizeof num)
		return false;
	str_copy(num, (size_t)(slash - s) + 1, s);
	if (!str_to_double(str_trim(num), 0, 1e9, &a) || !str_to_double(slash + 1, 1e-9, 1e9, &b) || a / b < min || a / b > max)
		return false;
	*out = a / b;
	return true;
}

static bool grade_name_ok(const char *name)
{
	size_t n = utf8_length(name);
	return n >= 1 && strlen(name) < AGG_GRADE_MAX && !strpbrk(name, " \t\"<>&");
}

static bool rules_pair(reader *rd, const ini_item *it, char *why, size_t n)
{
	agg_rules *r = rd->r;
	int k = 0;
	while (rule_keys[k] && strcmp(rule_keys[k], it->key) != 0)
		k++;
	if (!rule_keys[k]) {
		fmt_into(why, n, "unknown key \"%s\" in [rules] (expected target, min_valid, k_scores, "
			"k_comments, veto_dissatisfied, cap, rollup, fallback or ungraded)", it->key);
		return false;
	}
	if (rd->seen[k]) {
		fmt_into(why, n, "\"%s\" is given twice", it->key);
		return false;
	}
	rd->seen[k] = true;
	const char *v = it->value;
	bool ok;
	switch (k) {
	case 0: ok = parse_share(v, 0.01, 1, &r->target); break;
	case 1: ok = str_to_int(v, 1, 100000, &r->min_valid); break;
	case 2: ok = str_to_int(v, 1, 100000, &r->k_scores); break;
	case 3: ok = str_to_int(v, 1, 100000, &r->k_comments); break;
	case 4: ok = parse_share(v, 0, 1, &r->veto); break;
	case 5: ok = parse_share(v, 0, 0.99, &r->cap); break;
	case 6:
		ok = strcmp(v, "pool") == 0 || strcmp(v, "mean") == 0;
		r->rollup = strcmp(v, "mean") == 0 ? AGG_MEAN : AGG_POOL;
		break;
	default:
		ok = grade_name_ok(v);
		str_copy(k == 7 ? r->fallback : r->ungraded, AGG_GRADE_MAX, v);
	}
	if (!ok)
		fmt_into(why, n, "bad value \"%s\" for %s (%s)", v, it->key,
			k == 0 ? "a share from 0.01 to 1, like 0.95 or 19/20" :
			k <= 3 ? "a whole number from 1 to 100000" :
			k == 4 ? "a share from 0 to 1, like 1/3" :
			k == 5 ? "a share below 1, like 0.3; 0 for no cap" :
			k == 6 ? "pool or mean" : "a short name without spaces");
	return ok;
}

static bool grade_pair(reader *rd, const ini_item *it, char *why, size_t n)
{
	agg_grade_rule *g = &rd->r->grades[rd->r->n_grades - 1];
	bool rate = strcmp(it->key, "min_rate") == 0, score = strcmp(it->key, "min_score") == 0;
	if (!rate && !score) {
		fmt_into(why, n, "unknown key \"%s\" in [grade %s] (expected min_rate or min_score)", it->key, g->name);
		return false;
	}
	if (rate ? parse_share(it->value, 0, 1, &g->min_rate) : str_to_double(it->value, 0, 100, &g->min_score))
		return true;
	fmt_into(why, n, "bad value \"%s\" for %s (%s)", it->value, it->key,
		rate ? "a share from 0 to 1, like 0.95" : "a score from 0 to 100");
	return false;
}

static bool weight_pair(reader *rd, const ini_item *it, char *why, size_t n)
{
	agg_rules *r = rd->r;
	double w;
	if (strlen(it->key) >= AGG_GROUP_MAX || !it->key[0]) {
		fmt_into(why, n, "a voter group name must be 1 to 63 bytes");
		return false;
	}
	if (agg_rules_weight(r, it->key) >= 0 && r->n_weights) {
		fmt_into(why, n, "group \"%s\" is weighted twice", it->key);
		return false;
	}
	if (r->n_weights == AGG_MAX_GROUPS) {
		fmt_into(why, n, "at most %d voter groups can be weighted", AGG_MAX_GROUPS);
		return false;
	}
	if (!parse_share(it->value, 0.0001, 1000, &w)) {
		fmt_into(why, n, "bad weight \"%s\" for %s (a positive number, like 0.3)", it->value, it->key);
		return false;
	}
	str_copy(r->weights[r->n_weights].group, AGG_GROUP_MAX, it->key);
	r->weights[r->n_weights++].weight = w;
	return true;
}

static bool rules_item(void *ctx, const ini_item *it, char *why, size_t n)
{
	reader *rd = ctx;
	agg_rules *r = rd->r;
	if (!it->key) {   /* a section header */
		if (strcmp(it->kind, "grade") == 0) {
			if (!grade_name_ok(it->name)) {
				fmt_into(why, n, "a grade needs a short name without spaces: [grade 先进]");
				return false;
			}
			if (!rd->grades_given)
				r->n_grades = 0;
			rd->grades_given = true;
			for (size_t i = 0; i < r->n_grades; i++)
				if (strcmp(r->grades[i].name, it->name) == 0) {
					fmt_into(why, n, "grade %s is defined twice", it->name);
					return false;
				}
			if (r->n_grades == AGG_MAX_GRADES) {
				fmt_into(why, n, "at most %d grades", AGG_MAX_GRADES);
				return false;
			}
			agg_grade_rule *g = &r->grades[r->n_grades++];
			memset(g, 0, sizeof *g);
			str_copy(g->name, sizeof g->name, it->name);
			return true;
		}
		if ((strcmp(it->kind, "rules") == 0 || strcmp(it->kind, "weights") == 0) && !it->name[0])
			return true;
		fmt_into(why, n, "unknown section [%s%s%s] (expected [rules], [grade NAME] or [weights])",
			it->kind, it->name[0] ? " " : "", it->name);
		return false;
	}
	if (strcmp(it->kind, "rules") == 0)
		return rules_pair(rd, it, why, n);
	if (strcmp(it->kind, "grade") == 0)
		return grade_pair(rd, it, why, n);
	return weight_pair(rd, it, why, n);
}

int agg_rules_load(const char *path, agg_rules *r, char *err, size_t errsize)
{
	char *text = ini_read_file(path, 64 * 1024, err, errsize);
	if (!text)
		return -1;
	agg_rules_default(r);
	reader rd = { .r = r };
	int rc = ini_parse(text, path, rules_item, &rd, err, errsize);
	free(text);
	if (rc == 0 && r->n_grades == 0) {
		fmt_into(err, errsize, "%s: no grades left", path);
		rc = -1;
	}
	return rc;
}
