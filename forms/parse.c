/* parse.c - reading a questionnaire definition into a form table.
 *
 * The file format is described in forms/README.md; this file is its only
 * reader. Checking a submission against the table is in validate.c and
 * writing the HTML form is in render.c. What the levels mean for a tally
 * (rates, scores, grades) belongs to the aggregator. */
#include "forms/form.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/fmt.h"
#include "common/ini.h"
#include "common/mem.h"
#include "common/str.h"

/* A definition is a page of text; anything much larger is a mistake. */
enum { FORM_FILE_MAX = 256 * 1024, COMMENT_MAX_LIMIT = 2000 };

enum section { SEC_NONE, SEC_FORM, SEC_LEVEL, SEC_QUESTION, SEC_COMMENT };

/* The keys each section accepts, in the order messages list them. The
 * K_ constants below index these rows. */
enum { KEYS_MAX = 6 };
static const char *const section_keys[][KEYS_MAX + 1] = {
	[SEC_NONE] = { NULL },
	[SEC_FORM] = { "id", "title.zh", "title.en", "intro.zh", "intro.en", "rates", NULL },
	[SEC_LEVEL] = { "zh", "en", "counts", "points", NULL },
	[SEC_QUESTION] = { "zh", "en", "hint.zh", "hint.en", "overall", NULL },
	[SEC_COMMENT] = { "zh", "en", "max", "complaint.zh", "complaint.en", NULL },
};
enum { K_ZH = 0, K_EN = 1 };                                /* level, question, comment */
enum { K_ID, K_TITLE_ZH, K_TITLE_EN, K_INTRO_ZH, K_INTRO_EN, K_RATES }; /* form */
enum { K_COUNTS = 2, K_POINTS = 3 };                        /* level */
enum { K_HINT_ZH = 2, K_HINT_EN = 3, K_OVERALL = 4 };       /* question */
enum { K_MAX = 2, K_COMPLAINT_ZH = 3, K_COMPLAINT_EN = 4 }; /* comment */

static const char *const unit_kinds[] = {
	"committee", "general_branch", "branch", "department", "window", NULL
};

/* Used when a [comment] section gives no complaint.zh / complaint.en. */
static const char *const default_complaint[2] = {
	"这是投诉，请单位回复处理",
	"This is a complaint; please respond",
};

typedef struct parser {
	form *f;
	const char *file;
	char *err;
	size_t errsize;
	enum section sec;
	int sec_line;                /* line of the current section's header */
	char sec_name[48];           /* "[level s]", for messages */
	int key_line[KEYS_MAX];      /* where each key of the section was given */
	enum form_counts counts;     /* of the current level */
	int form_line, comment_line;
	int level_line[FORM_MAX_LEVELS];
	int question_line[FORM_MAX_QUESTIONS];
	int overall_line;
} parser;

/* Fill the caller's message buffer with "file:line: why"; returns false so
 * that callers can write "return fail(...)". */
static bool fail(parser *p, int line, const char *fmt, ...)
{
	if (!p->err || !p->errsize)
		return false;
	buf b;
	buf_init(&b, 1024);
	buf_fmt(&b, "%s:%d: ", p->file, line);
	va_list ap;
	va_start(ap, fmt);
	buf_vfmt(&b, fmt, ap);
	va_end(ap);
	str_copy(p->err, p->errsize, buf_str(&b));
	buf_free(&b);
	return false;
}

/* [a-z0-9_]{1,31}, or with letter_first [a-z][a-z0-9_]{0,30}. */
static bool good_name(const char *s, bool letter_first)
{
	size_t n = strlen(s);
	if (n == 0 || n >= FORM_NAME_MAX)
		return false;
	if (letter_first && !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int key_index(enum section sec, const char *key)
{
	for (int i = 0; section_keys[sec][i]; i++)
		if (strcmp(section_keys[sec][i], key) == 0)
			return i;
	return -1;
}

/* "zh, en, counts, points" for a message. */
static void key_list(enum section sec, char *dst, size_t size)
{
	buf b;
	buf_init(&b, 256);
	for (int i = 0; section_keys[sec][i]; i++)
		buf_fmt(&b, "%s%s", i ? ", " : "", section_keys[sec][i]);
	str_copy(dst, size, buf_str(&b));
	buf_free(&b);
}

static int question_index(const form *f, const char *name)
{
	for (size_t i = 0; i < f->n_questions; i++)
		if (strcmp(f->questions[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Every key of the section whose bit is in mask must have been given;
 * a missing one is reported at the section header. */
static bool require(parser *p, unsigned mask)
{
	for (int i = 0; section_keys[p->sec][i]; i++)
		if ((mask & (1u << i)) && !p->key_line[i])
			return fail(p, p->sec_line, "missing \"%s\" in %s",
				section_keys[p->sec][i], p->sec_name);
	return true;
}

/* Two keys that make sense only together (a text in both languages). */
static bool require_pair(parser *p, int a, int b)
{
	if (!p->key_line[a] == !p->key_line[b])
		return true;
	int given = p->key_line[a] ? a : b, other = p->key_line[a] ? b : a;
	return fail(p, p->sec_line, "%s has \"%s\" but not \"%s\"; give both languages or neither",
		p->sec_name, section_keys[p->sec][given], section_keys[p->sec][other]);
}

/* Check the section just read is complete. */
static bool end_section(parser *p)
{
	form *f = p->f;
	bool ok = true;
	switch (p->sec) {
	case SEC_NONE:
		break;
	case SEC_FORM:
		ok = require(p, 1u << K_ID | 1u << K_TITLE_ZH | 1u << K_TITLE_EN | 1u << K_RATES) &&
			require_pair(p, K_INTRO_ZH, K_INTRO_EN);
		break;
	case SEC_LEVEL:
		ok = require(p, 1u << K_ZH | 1u << K_EN | 1u << K_COUNTS);
		if (ok && p->counts == FORM_INVALID && p->key_line[K_POINTS])
			ok = fail(p, p->key_line[K_POINTS],
				"\"points\" is not allowed in %s: a level that counts invalid has no points",
				p->sec_name);
		else if (ok && p->counts != FORM_INVALID)
			ok = require(p, 1u << K_POINTS);
		if (ok)
			f->levels[f->n_levels - 1].counts = p->counts;
		break;
	case SEC_QUESTION:
		ok = require(p, 1u << K_ZH | 1u << K_EN) && require_pair(p, K_HINT_ZH, K_HINT_EN);
		break;
	case SEC_COMMENT:
		ok = require(p, 1u << K_ZH | 1u << K_EN | 1u << K_MAX) &&
			require_pair(p, K_COMPLAINT_ZH, K_COMPLAINT_EN);
		if (ok && !f->complaint_label[FORM_ZH]) {
			f->complaint_label[FORM_ZH] = xstrdup(default_complaint[FORM_ZH]);
			f->complaint_label[FORM_EN] = xstrdup(default_complaint[FORM_EN]);
		}
		break;
	}
	p->sec = SEC_NONE;
	memset(p->key_line, 0, sizeof p->key_line);
	return ok;
}

static void begin_section(parser *p, enum section sec, int line, const char *kind, const char *name)
{
	p->sec = sec;
	p->sec_line = line;
	p->counts = FORM_SATISFIED;
	memset(p->key_line, 0, sizeof p->key_line);
	fmt_into(p->sec_name, sizeof p->sec_name, "[%s%s%s]", kind, *name ? " " : "", name);
}

/* "[form]", "[level KEY]", "[question NAME]" or "[comment]"; s is trimmed. */
static bool parse_header(parser *p, char *s, int line)
{
	form *f = p->f;
	size_t n = strlen(s);
	if (s[n - 1] != ']')
		return fail(p, line, "section header %s does not end with ']'", s);
	s[n - 1] = '\0';
	char *word = str_trim(s + 1);
	char *arg = word + strcspn(word, " \t");
	if (*arg)
		*arg++ = '\0';
	str_trim(arg);
	if (!end_section(p))
		return false;

	if (str_eq(word, "form") || str_eq(word, "comment")) {
		bool is_form = word[0] == 'f';
		int *first = is_form ? &p->form_line : &p->comment_line;
		if (*arg)
			return fail(p, line, "[%s] takes no name (found \"%s\")", word, arg);
		if (*first)
			return fail(p, line, "duplicate [%s] section (the first is at line %d)", word, *first);
		*first = line;
		if (!is_form)
			f->has_comment = true;
		begin_section(p, is_form ? SEC_FORM : SEC_COMMENT, line, word, "");
		return true;
	}
	if (str_eq(word, "level")) {
		if (!*arg)
			return fail(p, line, "[level] needs a key, as in [level s]");
		if (!good_name(arg, false))
			return fail(p, line, "bad level key \"%s\" (use 1 to 31 of a-z, 0-9 and _)", arg);
		int dup = form_level_index(f, arg);
		if (dup >= 0)
			return fail(p, line, "duplicate [level %s] (the first is at line %d)", arg, p->level_line[dup]);
		if (f->n_levels == FORM_MAX_LEVELS)
			return fail(p, line, "too many levels: at most %d are allowed", (int)FORM_MAX_LEVELS);
		form_level *lv = &f->levels[f->n_levels];
		str_copy(lv->key, sizeof lv->key, arg);
		p->level_line[f->n_levels++] = line;
		begin_section(p, SEC_LEVEL, line, word, arg);
		return true;
	}
	if (str_eq(word, "question")) {
		if (!*arg)
			return fail(p, line, "[question] needs a name, as in [question leadership]");
		if (!good_name(arg, true))
			return fail(p, line, "bad question name \"%s\" (use a-z, then up to 30 of a-z, 0-9 and _)", arg);
		if (str_eq(arg, "comment") || str_eq(arg, "complaint"))
			return fail(p, line, "question name \"%s\" is reserved for the comment box; choose another", arg);
		int dup = question_index(f, arg);
		if (dup >= 0)
			return fail(p, line, "duplicate [question %s] (the first is at line %d)", arg, p->question_line[dup]);
		if (f->n_questions == FORM_MAX_QUESTIONS)
			return fail(p, line, "too many questions: at most %d are allowed", (int)FORM_MAX_QUESTIONS);
		form_question *q = &f->questions[f->n_questions];
		str_copy(q->name, sizeof q->name, arg);
		p->question_line[f->n_questions++] = line;
		begin_section(p, SEC_QUESTION, line, word, arg);
		return true;
	}
	return fail(p, line, "unknown section [%s] (expected [form], [level KEY], [question NAME] or [comment])", word);
}

/* rates = kind kind ...: space-separated unit kinds. */
static bool parse_rates(parser *p, const char *val, int line)
{
	form *f = p->f;
	const char *s = val;
	for (;;) {
		s += strspn(s, " \t");
		size_t n = strcspn(s, " \t");
		if (n == 0)
			return true;
		char *kind = xstrndup(s, n);
		s += n;
		bool known = false;
		for (int i = 0; unit_kinds[i]; i++)
			known = known || str_eq(kind, unit_kinds[i]);
		bool ok = true;
		if (!known)
			ok = fail(p, line, "unknown unit kind \"%s\" in rates (expected committee, "
				"general_branch, branch, department or window, separated by spaces)", kind);
		else if (form_rates_kind(f, kind))
			ok = fail(p, line, "unit kind \"%s\" is listed twice in rates", kind);
		else if (f->n_kinds == FORM_MAX_KINDS)
			ok = fail(p, line, "too many unit kinds in rates: at most %d are allowed", (int)FORM_MAX_KINDS);
		else
			str_copy(f->kinds[f->n_kinds++], FORM_NAME_MAX, kind);
		free(kind);
		if (!ok)
			return false;
	}
}

static bool set_form_key(parser *p, int k, const char *val, int line)
{
	form *f = p->f;
	switch (k) {
	case K_ID:
		if (!good_name(val, true))
			return fail(p, line, "bad id \"%s\" (use a-z, then up to 30 of a-z, 0-9 and _)", val);
		str_copy(f->id, sizeof f->id, val);
		return true;
	case K_TITLE_ZH: f->title[FORM_ZH] = xstrdup(val); return true;
	case K_TITLE_EN: f->title[FORM_EN] = xstrdup(val); return true;
	case K_INTRO_ZH: f->intro[FORM_ZH] = xstrdup(val); return true;
	case K_INTRO_EN: f->intro[FORM_EN] = xstrdup(val); return true;
	default: return parse_rates(p, val, line);
	}
}

static bool set_level_key(parser *p, int k, const char *val, int line)
{
	form_level *lv = &p->f->levels[p->f->n_levels - 1];
	static const char *const counts[] = { "satisfied", "neutral", "dissatisfied", "invalid" };
	switch (k) {
	case K_ZH: lv->label[FORM_ZH] = xstrdup(val); return true;
	case K_EN: lv->label[FORM_EN] = xstrdup(val); return true;
	case K_COUNTS:
		for (int i = 0; i < 4; i++)
			if (str_eq(val, counts[i])) {
				p->counts = (enum form_counts)i;
				return true;
			}
		return fail(p, line, "unknown counts value \"%s\" in %s (expected satisfied, neutral, "
			"dissatisfied or invalid)", val, p->sec_name);
	default:
		if (!str_to_int(val, 0, 100, &lv->points))
			return fail(p, line, "bad number \"%s\" for points in %s (expected a whole number "
				"from 0 to 100)", val, p->sec_name);
		return true;
	}
}

static bool set_question_key(parser *p, int k, const char *val, int line)
{
	form *f = p->f;
	int qi = (int)f->n_questions - 1;
	form_question *q = &f->questions[qi];
	switch (k) {
	case K_ZH: q->label[FORM_ZH] = xstrdup(val); return true;
	case K_EN: q->label[FORM_EN] = xstrdup(val); return true;
	case K_HINT_ZH: q->hint[FORM_ZH] = xstrdup(val); return true;
	case K_HINT_EN: q->hint[FORM_EN] = xstrdup(val); return true;
	default:
		if (str_eq(val, "no"))
			return true;
		if (!str_eq(val, "yes"))
			return fail(p, line, "bad value \"%s\" for overall in %s (expected yes or no)",
				val, p->sec_name);
		if (f->overall >= 0)
			return fail(p, line, "two overall questions: [question %s] is already overall "
				"(line %d); mark only one", f->questions[f->overall].name, p->overall_line);
		q->overall = true;
		f->overall = qi;
		p->overall_line = line;
		return true;
	}
}

static bool set_comment_key(parser *p, int k, const char *val, int line)
{
	form *f = p->f;
	switch (k) {
	case K_ZH: f->comment_label[FORM_ZH] = xstrdup(val); return true;
	case K_EN: f->comment_label[FORM_EN] = xstrdup(val); return true;
	case K_COMPLAINT_ZH: f->complaint_label[FORM_ZH] = xstrdup(val); return true;
	case K_COMPLAINT_EN: f->complaint_label[FORM_EN] = xstrdup(val); return true;
	default:
		if (!str_to_int(val, 1, COMMENT_MAX_LIMIT, &f->comment_max))
			return fail(p, line, "bad number \"%s\" for max in [comment] (expected a whole "
				"number of characters from 1 to %d)", val, (int)COMMENT_MAX_LIMIT);
		return true;
	}
}

/* "key = value"; s is trimmed and not empty. */
static bool parse_pair(parser *p, char *s, int line)
{
	char *eq = strchr(s, '=');
	if (p->sec == SEC_NONE) {
		if (eq)
			*eq = '\0';
		return fail(p, line, "\"%s\" comes before any section; start the file with [form]", str_trim(s));
	}
	if (!eq)
		return fail(p, line, "missing '=' in \"%s\" (expected key = value)", s);
	*eq = '\0';
	char *key = str_trim(s), *val = str_trim(eq + 1);
	if (!*key)
		return fail(p, line, "missing key before '=' in %s", p->sec_name);
	int k = key_index(p->sec, key);
	if (k < 0) {
		char keys[128];
		key_list(p->sec, keys, sizeof keys);
		return fail(p, line, "unknown key \"%s\" in %s (expected %s)", key, p->sec_name, keys);
	}
	if (p->key_line[k])
		return fail(p, line, "duplicate key \"%s\" in %s (the first is at line %d)",
			key, p->sec_name, p->key_line[k]);
	if (!*val)
		return fail(p, line, "empty value for \"%s\" in %s", key, p->sec_name);
	p->key_line[k] = line;
	switch (p->sec) {
	case SEC_FORM: return set_form_key(p, k, val, line);
	case SEC_LEVEL: return set_level_key(p, k, val, line);
	case SEC_QUESTION: return set_question_key(p, k, val, line);
	default: return set_comment_key(p, k, val, line);
	}
}

static bool parse_line(parser *p, const char *raw, size_t n, int line)
{
	if (!utf8_valid_text(raw, n))
		return fail(p, line, "text is not valid UTF-8 or holds a control character; "
			"save the file as UTF-8 text");
	char *s = xstrndup(raw, n);
	str_trim(s);
	bool ok = true;
	if (s[0] == '[')
		ok = parse_header(p, s, line);
	else if (s[0] != '\0' && s[0] != '#')
		ok = parse_pair(p, s, line);
	free(s);
	return ok;
}

/* Whole-form checks, reported at the last line. */
static bool finish(parser *p, int last)
{
	form *f = p->f;
	if (!end_section(p))
		return false;
	if (!p->form_line)
		return fail(p, last, "no [form] section; the file must have one with id, title.zh, "
			"title.en and rates");
	if (f->n_questions == 0)
		return fail(p, last, "no questions; add at least one [question NAME] section");
	if (f->n_levels < 2)
		return fail(p, last, "fewer than 2 levels; a scale needs at least two [level KEY] sections");
	bool satisfied = false;
	for (size_t i = 0; i < f->n_levels; i++)
		satisfied = satisfied || f->levels[i].counts == FORM_SATISFIED;
	if (!satisfied)
		return fail(p, last, "no level counts satisfied, so no satisfaction rate can be computed; "
			"set counts = satisfied on at least one level");
	return true;
}

/* Questions first (required), then the comment box and complaint flag. */
static void build_fields(form *f)
{
	f->n_fields = 0;
	for (size_t i = 0; i < f->n_questions; i++) {
		form_field *fd = &f->fields[f->n_fields++];
		str_copy(fd->name, sizeof fd->name, f->questions[i].name);
		fd->type = FORM_CHOICE;
		fd->required = true;
		fd->max_chars = 0;
		fd->question = (int)i;
	}
	if (!f->has_comment)
		return;
	f->fields[f->n_fields++] = (form_field){ "comment", FORM_TEXT, false, f->comment_max, -1 };
	f->fields[f->n_fields++] = (form_field){ "complaint", FORM_FLAG, false, 0, -1 };
}

form *form_parse(const char *text, const char *filename, char *err, size_t errsize)
{
	form *f = xcalloc(1, sizeof *f);
	f->overall = -1;
	parser p = { .f = f, .file = filename ? filename : "form", .err = err, .errsize = errsize };
	if (err && errsize)
		err[0] = '\0';
	const char *s = text;
	if (str_starts(s, "\xEF\xBB\xBF")) /* a BOM some editors write */
		s += 3;
	int line = 0;
	bool ok = true;
	while (ok && *s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		ok = parse_line(&p, s, n, ++line);
		s += n + (nl != NULL);
	}
	if (ok)
		ok = finish(&p, line > 0 ? line : 1);
	if (!ok) {
		form_free(f);
		return NULL;
	}
	build_fields(f);
	return f;
}

form *form_load(const char *path, char **text, char *err, size_t errsize)
{
	if (text)
		*text = NULL;
	char *src = ini_read_file(path, FORM_FILE_MAX, err, errsize);
	form *f = src ? form_parse(src, path, err, errsize) : NULL;
	if (f && text)
		*text = src;
	else
		free(src);
	return f;
}

void form_free(form *f)
{
	if (!f)
		return;
	for (int l = 0; l < 2; l++) {
		free(f->title[l]);
		free(f->intro[l]);
		free(f->comment_label[l]);
		free(f->complaint_label[l]);
		for (size_t i = 0; i < f->n_levels; i++)
			free(f->levels[i].label[l]);
		for (size_t i = 0; i < f->n_questions; i++) {
			free(f->questions[i].label[l]);
			free(f->questions[i].hint[l]);
		}
	}
	free(f);
}

bool form_rates_kind(const form *f, const char *kind)
{
	for (size_t i = 0; i < f->n_kinds; i++)
		if (str_eq(f->kinds[i], kind))
			return true;
	return false;
}

int form_level_index(const form *f, const char *key)
{
	for (size_t i = 0; i < f->n_levels; i++)
		if (str_eq(f->levels[i].key, key))
			return (int)i;
	return -1;
}
