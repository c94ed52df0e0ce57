/* test_form.c - questionnaires as data (forms/): parse, validate, render.
 *
 * The shipped definitions are parsed from the repository (tests run from
 * its root). Each way a definition can be wrong is tried from a string with
 * the exact "file:line:" the message must carry. Submissions are built with
 * the real urlencoded parser, as the collector builds them, and the HTML is
 * checked for what a browser would need: radios tied to labels, refilled
 * values, escaped text, no script and no inline style. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fmt.h"
#include "common/kv.h"
#include "common/mem.h"
#include "common/str.h"
#include "forms/form.h"

/* A small valid form; the numbers are line numbers, which the rejection
 * cases below rely on. */
#define HDR \
	"[form]\n"                  /*  1 */ \
	"id = t\n"                  /*  2 */ \
	"title.zh = 测试\n"         /*  3 */ \
	"title.en = Test\n"         /*  4 */ \
	"rates = branch\n"          /*  5 */
#define LEVELS \
	"[level s]\n"               /*  6 */ \
	"zh = 满意\n"               /*  7 */ \
	"en = Satisfied\n"          /*  8 */ \
	"counts = satisfied\n"      /*  9 */ \
	"points = 100\n"            /* 10 */ \
	"[level d]\n"               /* 11 */ \
	"zh = 不满意\n"             /* 12 */ \
	"en = Dissatisfied\n"       /* 13 */ \
	"counts = dissatisfied\n"   /* 14 */ \
	"points = 0\n"              /* 15 */
#define QUESTION \
	"[question a]\n"            /* 16 */ \
	"zh = 甲\n"                 /* 17 */ \
	"en = A\n"                  /* 18 */
#define BASE HDR LEVELS QUESTION

static form *parse_ok(const char *text)
{
	char err[512];
	form *f = form_parse(text, "t.form", err, sizeof err);
	if (!f)
		print_error("unexpected rejection: %s\n", err);
	assert_non_null(f);
	assert_string_equal(err, "");
	return f;
}

static form *load_ok(const char *path)
{
	char err[512];
	form *f = form_load(path, NULL, err, sizeof err);
	if (!f)
		print_error("%s\n", err);
	assert_non_null(f);
	return f;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ---- the shipped definitions ---- */

static void check_scale(const form *f)
{
	static const char *const keys[] = { "s", "b", "d", "u" };
	static const char *const zh[] = { "满意", "基本满意", "不满意", "不了解" };
	static const enum form_counts counts[] = {
		FORM_SATISFIED, FORM_SATISFIED, FORM_DISSATISFIED, FORM_INVALID
	};
	static const int points[] = { 100, 75, 0, 0 };
	assert_int_equal(f->n_levels, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(f->levels[i].key, keys[i]);
		assert_string_equal(f->levels[i].label[FORM_ZH], zh[i]);
		assert_non_null(f->levels[i].label[FORM_EN]);
		assert_int_equal(f->levels[i].counts, counts[i]);
		assert_int_equal(f->levels[i].points, points[i]);
		assert_int_equal(form_level_index(f, keys[i]), i);
	}
	assert_int_equal(form_level_index(f, "x"), -1);
	assert_int_equal(form_level_index(f, ""), -1);
}

static void check_tail(const form *f, size_t nq)
{
	assert_int_equal(f->n_questions, nq);
	assert_int_equal(f->overall, (int)nq - 1);
	for (size_t i = 0; i < nq; i++)
		assert_int_equal(f->questions[i].overall, i == nq - 1);
	assert_string_equal(f->questions[nq - 1].name, "overall");
	assert_true(f->has_comment);
	assert_int_equal(f->comment_max, 500);
	assert_string_equal(f->comment_label[FORM_ZH], "意见和建议（选填）");
	assert_string_equal(f->complaint_label[FORM_ZH], "这是投诉，请单位回复处理");
	assert_int_equal(f->n_fields, nq + 2);
	for (size_t i = 0; i < nq; i++) {
		assert_string_equal(f->fields[i].name, f->questions[i].name);
		assert_int_equal(f->fields[i].type, FORM_CHOICE);
		assert_true(f->fields[i].required);
		assert_int_equal(f->fields[i].question, (int)i);
	}
	const form_field *c = &f->fields[nq], *k = &f->fields[nq + 1];
	assert_string_equal(c->name, "comment");
	assert_int_equal(c->type, FORM_TEXT);
	assert_false(c->required);
	assert_int_equal(c->max_chars, 500);
	assert_string_equal(k->name, "complaint");
	assert_int_equal(k->type, FORM_FLAG);
	assert_false(k->required);
}

static void test_branch_form(void **state)
{
	(void)state;
	char err[512], *text = NULL;
	form *f = form_load("forms/branch.form", &text, err, sizeof err);
	if (!f)
		print_error("%s\n", err);
	assert_non_null(f);
	assert_string_equal(f->id, "branch");
	assert_string_equal(f->title[FORM_ZH], "党支部工作群众满意度测评");
	assert_string_equal(f->title[FORM_EN], "Party Branch Work Satisfaction Appraisal");
	assert_int_equal(f->n_kinds, 2);
	assert_true(form_rates_kind(f, "general_branch"));
	assert_true(form_rates_kind(f, "branch"));
	assert_false(form_rates_kind(f, "window"));
	assert_false(form_rates_kind(f, "committee"));
	check_scale(f);
	static const char *const names[] = {
		"leadership", "members", "mechanism", "performance", "reputation", "overall"
	};
	static const char *const labels[] = {
		"领导班子好", "党员队伍好", "工作机制好", "工作业绩好", "师生反映好", "总体评价"
	};
	for (int i = 0; i < 6; i++) {
		assert_string_equal(f->questions[i].name, names[i]);
		assert_string_equal(f->questions[i].label[FORM_ZH], labels[i]);
		assert_non_null(f->questions[i].label[FORM_EN]);
		/* the five goods carry hints in both languages */
		assert_int_equal(f->questions[i].hint[FORM_ZH] != NULL, i < 5);
		assert_int_equal(f->questions[i].hint[FORM_EN] != NULL, i < 5);
	}
	assert_string_equal(f->questions[0].label[FORM_EN], "Strong leadership team");
	check_tail(f, 6);

	/* the text handed back is the file, for rounds to freeze */
	assert_non_null(text);
	assert_non_null(strstr(text, "[question leadership]"));
	form *again = parse_ok(text);
	assert_string_equal(again->id, "branch");
	form_free(again);
	free(text);
	form_free(f);
}

static void test_window_form(void **state)
{
	(void)state;
	form *f = load_ok("forms/window.form");
	assert_string_equal(f->id, "window");
	assert_string_equal(f->title[FORM_ZH], "服务窗口满意度测评");
	assert_int_equal(f->n_kinds, 1);
	assert_true(form_rates_kind(f, "window"));
	assert_false(form_rates_kind(f, "branch"));
	check_scale(f);
	static const char *const names[] = {
		"attitude", "efficiency", "openness", "environment", "integrity", "overall"
	};
	for (int i = 0; i < 6; i++)
		assert_string_equal(f->questions[i].name, names[i]);
	assert_string_equal(f->questions[2].label[FORM_ZH], "办事公开（流程、时限、收费公开）");
	assert_string_equal(f->questions[5].label[FORM_ZH], "总体满意度");
	check_tail(f, 6);
	form_free(f);
}

/* A small form: no comment, no overall, optional parts absent, a BOM,
 * CRLF line ends, '=' and '#' inside values. */
static void test_minimal_form(void **state)
{
	(void)state;
	form *f = parse_ok("\xEF\xBB\xBF# lead comment\r\n" BASE "  # indented comment\r\n"
		"[question b_2]\r\nzh = 乙 = #2\r\nen=B\r\noverall = no\r\n");
	assert_string_equal(f->id, "t");
	assert_null(f->intro[FORM_ZH]);
	assert_null(f->intro[FORM_EN]);
	assert_int_equal(f->overall, -1);
	assert_false(f->has_comment);
	assert_int_equal(f->n_questions, 2);
	assert_string_equal(f->questions[1].label[FORM_ZH], "乙 = #2");
	assert_string_equal(f->questions[1].label[FORM_EN], "B");
	assert_null(f->questions[1].hint[FORM_ZH]);
	assert_int_equal(f->n_fields, 2);
	form_free(f);

	/* a [comment] without complaint labels gets the default ones */
	f = parse_ok(BASE "[comment]\nzh = 留言\nen = Note\nmax = 2000\n");
	assert_int_equal(f->comment_max, 2000);
	assert_string_equal(f->complaint_label[FORM_EN], "This is a complaint; please respond");
	assert_int_equal(f->n_fields, 3);
	form_free(f);

	/* a level with counts = invalid has no points; neutral is allowed */
	f = parse_ok(BASE "[level n]\nzh = 一般\nen = So-so\ncounts = neutral\npoints = 50\n"
		"[level u]\nzh = 不了解\nen = ?\ncounts = invalid\n");
	assert_int_equal(f->n_levels, 4);
	assert_int_equal(f->levels[2].counts, FORM_NEUTRAL);
	assert_int_equal(f->levels[2].points, 50);
	assert_int_equal(f->levels[3].counts, FORM_INVALID);
	assert_int_equal(f->levels[3].points, 0);
	form_free(f);
}

/* ---- rejections ---- */

struct bad_case {
	const char *what;
	const char *text;
	const char *want; /* the message must start with this */
};

static const struct bad_case bad_cases[] = {
	{ "unknown section", BASE "[foo]\n",
	  "t.form:19: unknown section [foo] (expected [form], [level KEY], [question NAME] or [comment])" },
	{ "unknown key", HDR "[level s]\nzh = 满意\nen = S\ncounts = satisfied\npionts = 100\n",
	  "t.form:10: unknown key \"pionts\" in [level s] (expected zh, en, counts, points)" },
	{ "unknown key in form", "# x\n[form]\nid = t\ntitel.zh = x\n",
	  "t.form:4: unknown key \"titel.zh\" in [form] (expected id, title.zh, title.en, intro.zh, intro.en, rates)" },
	{ "duplicate key", HDR "id = u\n",
	  "t.form:6: duplicate key \"id\" in [form] (the first is at line 2)" },
	{ "duplicate key in level", BASE "[level x]\nzh = a\nzh = b\n",
	  "t.form:21: duplicate key \"zh\" in [level x]" },
	{ "duplicate form", BASE "[form]\n", "t.form:19: duplicate [form] section (the first is at line 1)" },
	{ "duplicate level", BASE "[level s]\n", "t.form:19: duplicate [level s] (the first is at line 6)" },
	{ "duplicate question", BASE "\n[question a]\n", "t.form:20: duplicate [question a] (the first is at line 16)" },
	{ "duplicate comment", BASE "[comment]\nzh = 留言\nen = Note\nmax = 5\n[comment]\n",
	  "t.form:23: duplicate [comment] section (the first is at line 19)" },
	{ "key before any section", "# c\n\nid = t\n",
	  "t.form:3: \"id\" comes before any section" },
	{ "missing =", BASE "hint.zh 提示\n", "t.form:19: missing '=' in \"hint.zh 提示\"" },
	{ "missing key name", BASE "= x\n", "t.form:19: missing key before '='" },
	{ "empty value", BASE "hint.zh =\n", "t.form:19: empty value for \"hint.zh\" in [question a]" },
	{ "header without ]", BASE "[question b\n", "t.form:19: section header [question b does not end with ']'" },
	{ "missing title.en", "[form]\nid = t\ntitle.zh = x\nrates = branch\n" LEVELS QUESTION,
	  "t.form:1: missing \"title.en\" in [form]" },
	{ "missing id", "[form]\ntitle.zh = x\ntitle.en = y\nrates = branch\n",
	  "t.form:1: missing \"id\" in [form]" },
	{ "missing rates", "\n[form]\nid = t\ntitle.zh = x\ntitle.en = y\n",
	  "t.form:2: missing \"rates\" in [form]" },
	{ "missing points", HDR "[level s]\nzh = 满意\nen = S\ncounts = satisfied\n" QUESTION,
	  "t.form:6: missing \"points\" in [level s]" },
	{ "missing counts", HDR "[level s]\nzh = 满意\nen = S\npoints = 1\n",
	  "t.form:6: missing \"counts\" in [level s]" },
	{ "missing zh at end of file", BASE "[question b]\nen = B\n",
	  "t.form:19: missing \"zh\" in [question b]" },
	{ "missing en", BASE "[question b]\nzh = 乙\n[question c]\n",
	  "t.form:19: missing \"en\" in [question b]" },
	{ "missing max", BASE "[comment]\nzh = 留言\nen = Note\n",
	  "t.form:19: missing \"max\" in [comment]" },
	{ "intro in one language", HDR "intro.zh = 说明\n" LEVELS QUESTION,
	  "t.form:1: [form] has \"intro.zh\" but not \"intro.en\"" },
	{ "hint in one language", BASE "hint.en = hint\n",
	  "t.form:16: [question a] has \"hint.en\" but not \"hint.zh\"" },
	{ "complaint label in one language", BASE "[comment]\nzh = 留言\nen = Note\nmax = 5\ncomplaint.zh = 投诉\n",
	  "t.form:19: [comment] has \"complaint.zh\" but not \"complaint.en\"" },
	{ "points for invalid", BASE "[level u]\nzh = 不了解\npoints = 0\nen = ?\ncounts = invalid\n",
	  "t.form:21: \"points\" is not allowed in [level u]" },
	{ "bad id", "[form]\nid = Branch\n", "t.form:2: bad id \"Branch\"" },
	{ "bad id start", "[form]\nid = 2b\n", "t.form:2: bad id \"2b\"" },
	{ "bad level key", BASE "[level S]\n", "t.form:19: bad level key \"S\"" },
	{ "level key too long", BASE "[level abcdefghijabcdefghijabcdefghijab]\n", "t.form:19: bad level key" },
	{ "level without key", BASE "[level]\n", "t.form:19: [level] needs a key" },
	{ "bad question name", BASE "[question 1a]\n", "t.form:19: bad question name \"1a\"" },
	{ "question name with dash", BASE "[question a-b]\n", "t.form:19: bad question name \"a-b\"" },
	{ "reserved question name", BASE "[question comment]\n", "t.form:19: question name \"comment\" is reserved" },
	{ "reserved complaint", BASE "[question complaint]\n", "t.form:19: question name \"complaint\" is reserved" },
	{ "form with a name", "[form x]\n", "t.form:1: [form] takes no name" },
	{ "points too high", HDR "[level s]\nzh = 满意\nen = S\ncounts = satisfied\npoints = 101\n",
	  "t.form:10: bad number \"101\" for points in [level s] (expected a whole number from 0 to 100)" },
	{ "points not a number", HDR "[level s]\npoints = 1O0\n", "t.form:7: bad number \"1O0\" for points" },
	{ "points negative", HDR "[level s]\npoints = -1\n", "t.form:7: bad number \"-1\" for points" },
	{ "max zero", BASE "[comment]\nmax = 0\n", "t.form:20: bad number \"0\" for max in [comment]" },
	{ "max too high", BASE "[comment]\nmax = 2001\n", "t.form:20: bad number \"2001\" for max" },
	{ "unknown kind", "[form]\nid = t\nrates = branch party\n",
	  "t.form:3: unknown unit kind \"party\" in rates" },
	{ "kind with comma", "[form]\nrates = branch, window\n", "t.form:2: unknown unit kind \"branch,\"" },
	{ "kind twice", "[form]\nrates = branch window branch\n", "t.form:2: unit kind \"branch\" is listed twice" },
	{ "unknown counts", HDR "[level s]\ncounts = happy\n",
	  "t.form:7: unknown counts value \"happy\" in [level s] (expected satisfied, neutral, dissatisfied or invalid)" },
	{ "bad overall value", BASE "overall = true\n", "t.form:19: bad value \"true\" for overall" },
	{ "two overall", BASE "overall = yes\n[question b]\nzh = 乙\nen = B\noverall = yes\n",
	  "t.form:23: two overall questions: [question a] is already overall (line 19)" },
	{ "no questions", HDR LEVELS, "t.form:15: no questions" },
	{ "no questions, trailing blank lines", HDR LEVELS "\n\n", "t.form:17: no questions" },
	{ "one level", HDR "[level s]\nzh = 满意\nen = S\ncounts = satisfied\npoints = 100\n" QUESTION,
	  "t.form:13: fewer than 2 levels" },
	{ "no satisfied level", HDR
	  "[level d]\nzh = 不满意\nen = D\ncounts = dissatisfied\npoints = 0\n"
	  "[level u]\nzh = 不了解\nen = U\ncounts = invalid\n" QUESTION,
	  "t.form:17: no level counts satisfied" },
	{ "no form section", LEVELS QUESTION, "t.form:13: no [form] section" },
	{ "empty text", "", "t.form:1: no [form] section" },
	{ "invalid UTF-8", BASE "[question b]\nzh = \xe6\xbb\n", "t.form:20: text is not valid UTF-8" },
	{ "overlong UTF-8", "# \xc0\xaf\n", "t.form:1: text is not valid UTF-8" },
	{ "control character", BASE "\n\nen2 = \x01\n", "t.form:21: text is not valid UTF-8" },
};

static void test_rejections(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		char err[512] = "untouched";
		form *f = form_parse(c->text, "t.form", err, sizeof err);
		if (f) {
			print_error("%s: accepted\n", c->what);
			form_free(f);
			failures++;
		} else if (!str_starts(err, c->want)) {
			print_error("%s:\n  got  %s\n  want %s...\n", c->what, err, c->want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* FORM_MAX_* limits: the first section over the limit is named. */
static void test_limits(void **state)
{
	(void)state;
	buf b;
	buf_init(&b, 64 * 1024);
	buf_puts(&b, HDR QUESTION); /* 8 lines */
	for (int i = 0; i < FORM_MAX_LEVELS; i++)
		buf_fmt(&b, "[level l%d]\nzh = z\nen = e\ncounts = satisfied\npoints = 1\n", i);
	form *f = parse_ok(buf_str(&b));
	assert_int_equal(f->n_levels, FORM_MAX_LEVELS);
	form_free(f);
	buf_puts(&b, "[level l99]\n");
	char err[512];
	assert_null(form_parse(buf_str(&b), "t.form", err, sizeof err));
	char want[128];
	fmt_into(want, sizeof want, "t.form:%d: too many levels: at most 8", 8 + 5 * FORM_MAX_LEVELS + 1);
	assert_true(str_starts(err, want));

	buf_reset(&b);
	buf_puts(&b, BASE); /* 18 lines, one question */
	for (int i = 1; i < FORM_MAX_QUESTIONS; i++)
		buf_fmt(&b, "[question q%d]\nzh = z\nen = e\n", i);
	f = parse_ok(buf_str(&b));
	assert_int_equal(f->n_questions, FORM_MAX_QUESTIONS);
	assert_int_equal(f->n_fields, FORM_MAX_QUESTIONS);
	form_free(f);
	buf_puts(&b, "[question last]\n");
	assert_null(form_parse(buf_str(&b), "t.form", err, sizeof err));
	fmt_into(want, sizeof want, "t.form:%d: too many questions: at most 24", 18 + 3 * (FORM_MAX_QUESTIONS - 1) + 1);
	assert_true(str_starts(err, want));
	buf_free(&b);

	/* a small message buffer truncates rather than overflows */
	char tiny[12];
	assert_null(form_parse("[foo]\n", "t.form", tiny, sizeof tiny));
	assert_string_equal(tiny, "t.form:1: u");
	assert_null(form_parse("[foo]\n", "t.form", NULL, 0));
}

static void test_load_errors(void **state)
{
	(void)state;
	char err[512];
	char *text = (char *)"sentinel";
	assert_null(form_load("forms/no-such.form", &text, err, sizeof err));
	assert_null(text);
	assert_true(str_starts(err, "forms/no-such.form: cannot open: "));

	/* a NUL byte is reported on its line, not silently cut off */
	char path[] = "/tmp/test_form.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char body[] = BASE "[question b]\nzh = \0x\nen = B\n";
	assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
	close(fd);
	assert_null(form_load(path, &text, err, sizeof err));
	char want[128];
	fmt_into(want, sizeof want, "%s:20: NUL byte", path);
	assert_true(str_starts(err, want));

	/* a parse error names the path it was given */
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(BASE "oops\n", fp);
	fclose(fp);
	assert_null(form_load(path, NULL, err, sizeof err));
	fmt_into(want, sizeof want, "%s:19: missing '='", path);
	assert_true(str_starts(err, want));
	unlink(path);
}

/* ---- validation ---- */

static form *branch;

static int load_branch(void **state)
{
	(void)state;
	char err[512];
	branch = form_load("forms/branch.form", NULL, err, sizeof err);
	if (!branch)
		print_error("%s\n", err);
	return branch ? 0 : -1;
}

static int free_branch(void **state)
{
	(void)state;
	form_free(branch);
	branch = NULL;
	return 0;
}

#define ALL "leadership=s&members=b&mechanism=d&performance=u&reputation=s&overall=b"

static void kv(const char *body, kv_list *out)
{
	assert_int_equal(kv_parse(body, strlen(body), 64, out), KV_OK);
}

/* Validate body; returns the problem (FORM_OK on success) and fills e. */
static enum form_problem check(const form *f, const char *body, form_ballot *b, form_error *e)
{
	kv_list l;
	kv(body, &l);
	int rc = form_validate(f, &l, b, e);
	kv_free(&l);
	assert_int_equal(rc, e->problem == FORM_OK ? 0 : -1);
	if (rc)
		assert_null(b->comment);
	return e->problem;
}

static void test_validate_ok(void **state)
{
	(void)state;
	form_ballot b;
	form_error e;
	assert_int_equal(check(branch, ALL, &b, &e), FORM_OK);
	static const int want[] = { 0, 1, 2, 3, 0, 1 };
	for (int i = 0; i < 6; i++)
		assert_int_equal(b.answer[i], want[i]);
	assert_null(b.comment);
	assert_false(b.complaint);
	assert_int_equal(e.question, -1);

	char *json = form_answers_json(branch, &b);
	assert_string_equal(json, "{\"leadership\":\"s\",\"members\":\"b\",\"mechanism\":\"d\","
		"\"performance\":\"u\",\"reputation\":\"s\",\"overall\":\"b\"}");
	free(json);
	form_ballot_free(&b);

	/* the comment is trimmed, its line breaks made LF; white space alone is none */
	assert_int_equal(check(branch, ALL "&comment=++%E9%A3%9F%E5%A0%82%0D%0Agood%0D%0A+", &b, &e), FORM_OK);
	assert_string_equal(b.comment, "食堂\ngood");
	form_ballot_free(&b);
	assert_null(b.comment);
	assert_int_equal(check(branch, ALL "&comment=+%0D%0A%09+", &b, &e), FORM_OK);
	assert_null(b.comment);
	form_ballot_free(&b);

	/* a complaint with its comment */
	assert_int_equal(check(branch, ALL "&comment=x&complaint=1", &b, &e), FORM_OK);
	assert_string_equal(b.comment, "x");
	assert_true(b.complaint);
	form_ballot_free(&b);
}

static void test_validate_comment_length(void **state)
{
	(void)state;
	form_ballot b;
	form_error e;
	buf body;
	buf_init(&body, 64 * 1024);
	buf_puts(&body, ALL "&comment=");
	for (int i = 0; i < 498; i++)
		buf_puts(&body, "%E5%A5%BD"); /* 好 */
	buf_puts(&body, "%0D%0A"); /* CRLF counts as one character, as in the browser */
	assert_int_equal(check(branch, buf_str(&body), &b, &e), FORM_OK);
	assert_int_equal(utf8_length(b.comment), 498); /* the trailing break is trimmed */
	form_ballot_free(&b);
	buf_puts(&body, "%E5%A5%BD");
	assert_int_equal(check(branch, buf_str(&body), &b, &e), FORM_OK);
	assert_int_equal(utf8_length(b.comment), 500);
	form_ballot_free(&b);
	buf_puts(&body, "x");
	assert_int_equal(check(branch, buf_str(&body), &b, &e), FORM_COMMENT_TOO_LONG);
	assert_string_equal(e.field, "comment");
	assert_int_equal(e.question, -1);

	buf out;
	buf_init(&out, 4096);
	form_error_html(branch, &e, FORM_ZH, &out);
	assert_string_equal(buf_str(&out), "意见和建议最多 500 字，请删减后再提交。");
	buf_reset(&out);
	form_error_html(branch, &e, FORM_EN, &out);
	assert_non_null(strstr(buf_str(&out), "at most 500 characters"));
	buf_free(&out);
	buf_free(&body);
}

static void test_validate_problems(void **state)
{
	(void)state;
	form_ballot b;
	form_error e;

	/* unknown field, named, and reported before everything else */
	assert_int_equal(check(branch, "leadership=zz&x=1", &b, &e), FORM_UNKNOWN_FIELD);
	assert_string_equal(e.field, "x");
	assert_int_equal(e.question, -1);
	assert_int_equal(check(branch, ALL "&Leadership=s", &b, &e), FORM_UNKNOWN_FIELD);
	assert_string_equal(e.field, "Leadership");

	/* a long unknown name is cut at a character boundary */
	assert_int_equal(check(branch, "%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80"
		"%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80%E4%B8%80=1", &b, &e), FORM_UNKNOWN_FIELD);
	assert_int_equal(strlen(e.field), 30);
	assert_true(utf8_valid_text(e.field, strlen(e.field)));

	/* a value that is not a level, before missing answers */
	assert_int_equal(check(branch, "leadership=s&performance=x", &b, &e), FORM_BAD_ANSWER);
	assert_int_equal(e.question, 3);
	assert_string_equal(e.field, "performance");
	assert_int_equal(check(branch, ALL "&comment=hi", &b, &e), FORM_OK);
	form_ballot_free(&b);
	assert_int_equal(check(branch, "leadership=S&members=b&mechanism=d&performance=u&reputation=s&overall=b",
		&b, &e), FORM_BAD_ANSWER);
	assert_int_equal(e.question, 0);

	/* bad flag: only "1" is a complaint, before missing answers */
	assert_int_equal(check(branch, "leadership=s&complaint=on&comment=x", &b, &e), FORM_BAD_FLAG);
	assert_string_equal(e.field, "complaint");
	assert_int_equal(check(branch, ALL "&complaint=", &b, &e), FORM_BAD_FLAG);

	/* missing: the first in question order; empty counts as missing */
	assert_int_equal(check(branch, "leadership=s&members=b&performance=u&reputation=s", &b, &e),
		FORM_MISSING_ANSWER);
	assert_int_equal(e.question, 2);
	assert_string_equal(e.field, "mechanism");
	assert_int_equal(check(branch, "leadership=s&members=b&mechanism=d&performance=u&reputation=s&overall=",
		&b, &e), FORM_MISSING_ANSWER);
	assert_int_equal(e.question, 5);
	assert_int_equal(check(branch, "", &b, &e), FORM_MISSING_ANSWER);
	assert_int_equal(e.question, 0);
	/* a missing answer comes before an empty complaint */
	assert_int_equal(check(branch, "leadership=s&complaint=1", &b, &e), FORM_MISSING_ANSWER);

	/* a complaint needs a comment that is more than white space */
	assert_int_equal(check(branch, ALL "&complaint=1", &b, &e), FORM_COMPLAINT_EMPTY);
	assert_int_equal(check(branch, ALL "&complaint=1&comment=+%0A+", &b, &e), FORM_COMPLAINT_EMPTY);
	assert_int_equal(e.question, -1);

	/* a form without [comment] has no comment field */
	form *f = parse_ok(BASE);
	assert_int_equal(check(f, "a=s", &b, &e), FORM_OK);
	assert_int_equal(b.answer[0], 0);
	form_ballot_free(&b);
	assert_int_equal(check(f, "a=s&comment=x", &b, &e), FORM_UNKNOWN_FIELD);
	assert_string_equal(e.field, "comment");
	assert_int_equal(check(f, "a=s&complaint=1", &b, &e), FORM_UNKNOWN_FIELD);
	form_free(f);
}

static void expect_html(const form_error *e, enum form_lang lang, const char *want)
{
	buf out;
	buf_init(&out, 4096);
	form_error_html(branch, e, lang, &out);
	assert_string_equal(buf_str(&out), want);
	buf_free(&out);
}

static void test_error_html(void **state)
{
	(void)state;
	form_ballot b;
	form_error e;
	check(branch, "leadership=s", &b, &e);
	expect_html(&e, FORM_ZH, "请回答“党员队伍好”。");
	check(branch, "", &b, &e);
	expect_html(&e, FORM_EN, "Please answer “Strong leadership team”.");

	/* an unknown name is the rater's input: escaped */
	check(branch, "%3Cb%3E%22=1", &b, &e);
	assert_int_equal(e.problem, FORM_UNKNOWN_FIELD);
	expect_html(&e, FORM_ZH, "表单中没有“&lt;b&gt;&quot;”这一项，请刷新页面后重新填写。");

	check(branch, "members=zz", &b, &e);
	expect_html(&e, FORM_ZH, "“党员队伍好”的回答不是可选的答案之一，请重新选择。");

	form_error none = { FORM_OK, -1, "" };
	expect_html(&none, FORM_ZH, "");

	/* every problem has a sentence in both languages */
	for (int p = FORM_MISSING_ANSWER; p <= FORM_COMPLAINT_EMPTY; p++)
		for (int l = FORM_ZH; l <= FORM_EN; l++) {
			form_error x = { (enum form_problem)p, p == FORM_MISSING_ANSWER ? 1 : -1, "x" };
			buf out;
			buf_init(&out, 4096);
			form_error_html(branch, &x, (enum form_lang)l, &out);
			assert_true(out.len > 10);
			buf_free(&out);
		}
}

/* ---- rendering ---- */

static char *render(const form *f, const form_view *v)
{
	buf out;
	buf_init(&out, 64 * 1024);
	form_render(f, v, &out);
	assert_false(out.overflow);
	return buf_take(&out);
}

/* No script element, no inline style, no event handler attribute. Text
 * and attribute values are escaped, so '<' and '>' only delimit tags. */
static void no_script_no_style(const char *html)
{
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "style="));
	bool in_tag = false;
	for (const char *p = html; *p; p++) {
		if (*p == '<' || *p == '>')
			in_tag = *p == '<';
		else if (in_tag && str_starts(p, " on"))
			fail_msg("event handler attribute at: %.40s", p);
	}
}

static void test_render_branch(void **state)
{
	(void)state;
	form_view v = { .lang = FORM_ZH, .action = "/b/u/k7m2p9qa" };
	char *html = render(branch, &v);
	assert_true(str_starts(html, "<form method=\"post\" action=\"/b/u/k7m2p9qa\""));
	assert_true(strlen(html) < 15000);
	assert_non_null(strstr(html, "<fieldset class=\"q\" id=\"f-leadership\"><legend>1. 领导班子好</legend>"
		"<p class=\"hint\">"));
	assert_non_null(strstr(html, "<div class=\"opt\"><input type=\"radio\" name=\"leadership\" "
		"id=\"leadership-s\" value=\"s\" required><label for=\"leadership-s\">满意</label></div>"));
	assert_non_null(strstr(html, "<label for=\"reputation-u\">不了解</label>"));
	assert_non_null(strstr(html, "<fieldset class=\"q overall\" id=\"f-overall\"><legend>6. 总体评价</legend>"));
	assert_int_equal(count(html, "type=\"radio\""), 24);
	assert_int_equal(count(html, "<fieldset"), 6);
	assert_int_equal(count(html, "<p class=\"hint\">"), 5);
	/* every input has its label: the radios, the comment box and the flag */
	assert_int_equal(count(html, "<label for="), 24 + 2);
	assert_non_null(strstr(html, "<label for=\"comment\">意见和建议（选填）</label>"
		"<textarea id=\"comment\" name=\"comment\" maxlength=\"500\" rows=\"4\"></textarea>"));
	assert_non_null(strstr(html, "<input type=\"checkbox\" id=\"complaint\" name=\"complaint\" value=\"1\">"
		"<label for=\"complaint\">这是投诉，请单位回复处理</label>"));
	assert_non_null(strstr(html, "<button type=\"submit\">提交评价</button></form>"));
	assert_null(strstr(html, "checked"));
	assert_null(strstr(html, "error-summary"));
	assert_null(strstr(html, "has-error"));
	assert_null(strstr(html, "type=\"hidden\""));
	no_script_no_style(html);
	free(html);

	v.lang = FORM_EN;
	v.hidden_name = "t";
	v.hidden_value = "abc\"><x";
	html = render(branch, &v);
	assert_non_null(strstr(html, "<legend>1. Strong leadership team</legend>"));
	assert_non_null(strstr(html, "<button type=\"submit\">Submit</button>"));
	assert_non_null(strstr(html, "<input type=\"hidden\" name=\"t\" value=\"abc&quot;&gt;&lt;x\">"));
	no_script_no_style(html);
	free(html);
}

static void test_render_refill(void **state)
{
	(void)state;
	kv_list values;
	kv("leadership=b&overall=u&comment=%0A%3Ci%3Ehi%3C%2Fi%3E&complaint=1", &values);
	form_ballot b;
	form_error e;
	assert_int_equal(form_validate(branch, &values, &b, &e), -1);
	assert_int_equal(e.problem, FORM_MISSING_ANSWER);
	form_view v = { .lang = FORM_ZH, .action = "/b", .values = &values, .error = &e };
	char *html = render(branch, &v);
	assert_non_null(strstr(html, "<p class=\"error-summary\" role=\"alert\">请回答“党员队伍好”。</p>"));
	assert_non_null(strstr(html, "<fieldset class=\"q has-error\" id=\"f-members\">"));
	assert_int_equal(count(html, "has-error"), 1);
	assert_non_null(strstr(html, "id=\"leadership-b\" value=\"b\" checked required>"));
	assert_non_null(strstr(html, "id=\"overall-u\" value=\"u\" checked required>"));
	assert_non_null(strstr(html, "<fieldset class=\"q overall\" id=\"f-overall\">"));
	assert_non_null(strstr(html, "value=\"1\" checked><label for=\"complaint\">"));
	assert_int_equal(count(html, " checked"), 3);
	/* the leading newline survives the parser's dropping of the first one */
	assert_non_null(strstr(html, "rows=\"4\">\n\n&lt;i&gt;hi&lt;/i&gt;</textarea>"));
	no_script_no_style(html);
	free(html);

	/* an error on the comment marks the comment box */
	e = (form_error){ FORM_COMPLAINT_EMPTY, -1, "complaint" };
	html = render(branch, &v);
	assert_non_null(strstr(html, "<div class=\"comment has-error\">"));
	assert_int_equal(count(html, "has-error"), 1);
	free(html);
	kv_free(&values);
}

static void test_render_escapes(void **state)
{
	(void)state;
	form *f = parse_ok("[form]\nid = x\ntitle.zh = <script>\"&'\ntitle.en = t\nrates = window\n"
		"[level s]\nzh = <script>\"&'\nen = s\ncounts = satisfied\npoints = 1\n"
		"[level d]\nzh = d\nen = d\ncounts = dissatisfied\npoints = 0\n"
		"[question q]\nzh = <script>\"&'\nen = q\nhint.zh = <img src=x onerror=alert(1)>\nhint.en = h\n"
		"[comment]\nzh = <script>\"&'\nen = c\nmax = 10\ncomplaint.zh = <script>\"&'\ncomplaint.en = c\n");
	kv_list values;
	kv("q=s&comment=%3C%2Ftextarea%3E%3Cscript%3E", &values);
	form_error e = { FORM_MISSING_ANSWER, 0, "q" };
	form_view v = { .lang = FORM_ZH, .action = "/u/\"><script>", .values = &values, .error = &e,
		.hidden_name = "<script>", .hidden_value = "'" };
	char *html = render(f, &v);
	const char *esc = "&lt;script&gt;&quot;&amp;&#39;";
	assert_non_null(strstr(html, "<legend>1. &lt;script&gt;&quot;&amp;&#39;</legend>"));
	assert_non_null(strstr(html, "<label for=\"q-s\">&lt;script&gt;&quot;&amp;&#39;</label>"));
	assert_non_null(strstr(html, "请回答“&lt;script&gt;&quot;&amp;&#39;”。"));
	assert_int_equal(count(html, esc), 5); /* legend, level, error, comment, complaint */
	assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;"));
	assert_non_null(strstr(html, "action=\"/u/&quot;&gt;&lt;script&gt;\""));
	assert_non_null(strstr(html, "&lt;/textarea&gt;&lt;script&gt;</textarea>"));
	assert_non_null(strstr(html, "<input type=\"hidden\" name=\"&lt;script&gt;\" value=\"&#39;\">"));
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "style="));
	free(html);
	kv_free(&values);
	form_free(f);
}

/* A buffer too small for the form is marked, not overrun. */
static void test_render_overflow(void **state)
{
	(void)state;
	form_view v = { .lang = FORM_ZH, .action = "/b" };
	buf out;
	buf_init(&out, 1000);
	form_render(branch, &v, &out);
	assert_true(out.overflow);
	assert_true(out.len <= 1000);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_branch_form),
		cmocka_unit_test(test_window_form),
		cmocka_unit_test(test_minimal_form),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_validate_ok),
		cmocka_unit_test(test_validate_comment_length),
		cmocka_unit_test(test_validate_problems),
		cmocka_unit_test(test_error_html),
		cmocka_unit_test(test_render_branch),
		cmocka_unit_test(test_render_refill),
		cmocka_unit_test(test_render_escapes),
		cmocka_unit_test(test_render_overflow),
	};
	return cmocka_run_group_tests(tests, load_branch, free_branch);
}
