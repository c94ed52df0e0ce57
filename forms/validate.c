/* validate.c - checking a submission against a form's field table.
 *
 * A submission arrives as a kv_list that common/kv.c has already decoded
 * and checked for UTF-8; here it is held against the table parse.c built
 * and turned into a typed form_ballot. The explanations shown to a rater
 * and the JSON stored with a ballot live here too. Storing the ballot is
 * the collector's business. */
#include "forms/form.h"

#include <stdlib.h>
#include <string.h>

#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

static const form_field *find_field(const form *f, const char *name)
{
	for (size_t i = 0; i < f->n_fields; i++)
		if (strcmp(f->fields[i].name, name) == 0)
			return &f->fields[i];
	return NULL;
}

/* Copy a name that may come from outside, cutting at a character boundary
 * so that a truncated name is still valid UTF-8. */
static void copy_name(char dst[FORM_NAME_MAX], const char *src)
{
	if (str_copy(dst, FORM_NAME_MAX, src))
		return;
	size_t n = FORM_NAME_MAX - 1;
	while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
		n--;
	dst[n] = '\0';
}

/* The comment as stored: line breaks as "\n" (browsers send a textarea's
 * line breaks as CRLF but count them as one character for maxlength), and
 * without surrounding white space. NULL when nothing is left. */
static char *clean_comment(const char *s)
{
	char *c = xmalloc(strlen(s) + 1);
	size_t o = 0;
	for (; *s; s++) {
		if (*s == '\r') {
			c[o++] = '\n';
			if (s[1] == '\n')
				s++;
		} else {
			c[o++] = *s;
		}
	}
	c[o] = '\0';
	str_trim(c);
	if (!*c) {
		free(c);
		return NULL;
	}
	return c;
}

static int reject(form_ballot *out, form_error *why, enum form_problem problem,
	int question, const char *field)
{
	form_ballot_free(out);
	if (why) {
		why->problem = problem;
		why->question = question;
		copy_name(why->field, field);
	}
	return -1;
}

int form_validate(const form *f, const kv_list *fields, form_ballot *out, form_error *why)
{
	memset(out, 0, sizeof *out);
	for (size_t q = 0; q < FORM_MAX_QUESTIONS; q++)
		out->answer[q] = -1;
	if (why)
		*why = (form_error){ FORM_OK, -1, "" };

	for (size_t i = 0; i < fields->n; i++)
		if (!find_field(f, fields->items[i].name))
			return reject(out, why, FORM_UNKNOWN_FIELD, -1, fields->items[i].name);

	/* Each later check walks the table in order, so the first problem
	 * reported is the first on the page. */
	for (size_t i = 0; i < f->n_fields; i++) {
		const form_field *fd = &f->fields[i];
		const char *v = kv_get(fields, fd->name);
		if (fd->type != FORM_CHOICE || !v || !*v)
			continue;
		int level = form_level_index(f, v);
		if (level < 0)
			return reject(out, why, FORM_BAD_ANSWER, fd->question, fd->name);
		out->answer[fd->question] = level;
	}
	for (size_t i = 0; i < f->n_fields; i++) {
		const form_field *fd = &f->fields[i];
		const char *v = kv_get(fields, fd->name);
		if (fd->type != FORM_TEXT || !v)
			continue;
		free(out->comment);
		out->comment = clean_comment(v);
		if (out->comment && utf8_length(out->comment) > (size_t)fd->max_chars)
			return reject(out, why, FORM_COMMENT_TOO_LONG, -1, fd->name);
	}
	for (size_t i = 0; i < f->n_fields; i++) {
		const form_field *fd = &f->fields[i];
		const char *v = kv_get(fields, fd->name);
		if (fd->type != FORM_FLAG || !v)
			continue;
		if (!str_eq(v, "1"))
			return reject(out, why, FORM_BAD_FLAG, -1, fd->name);
		out->complaint = true;
	}
	for (size_t i = 0; i < f->n_fields; i++) {
		const form_field *fd = &f->fields[i];
		if (fd->required && fd->type == FORM_CHOICE && out->answer[fd->question] < 0)
			return reject(out, why, FORM_MISSING_ANSWER, fd->question, fd->name);
	}
	if (out->complaint && !out->comment)
		return reject(out, why, FORM_COMPLAINT_EMPTY, -1, "complaint");
	return 0;
}

void form_ballot_free(form_ballot *b)
{
	free(b->comment);
	b->comment = NULL;
	b->complaint = false;
}

void form_error_html(const form *f, const form_error *why, enum form_lang lang, buf *out)
{
	bool zh = lang != FORM_EN;
	int l = zh ? FORM_ZH : FORM_EN;
	const char *label = why->field;
	if (why->question >= 0 && (size_t)why->question < f->n_questions)
		label = f->questions[why->question].label[l];
	switch (why->problem) {
	case FORM_OK:
		break;
	case FORM_MISSING_ANSWER:
		buf_fmt(out, zh ? "请回答“%h”。" : "Please answer “%h”.", label);
		break;
	case FORM_BAD_ANSWER:
		buf_fmt(out, zh ? "“%h”的回答不是可选的答案之一，请重新选择。"
			: "The answer to “%h” is not one of the choices; please choose again.", label);
		break;
	case FORM_UNKNOWN_FIELD:
		buf_fmt(out, zh ? "表单中没有“%h”这一项，请刷新页面后重新填写。"
			: "The form has no field “%h”; please reload the page and fill it in again.", label);
		break;
	case FORM_COMMENT_TOO_LONG:
		buf_fmt(out, zh ? "意见和建议最多 %d 字，请删减后再提交。"
			: "Comments can be at most %d characters long; please shorten yours and submit again.",
			f->comment_max);
		break;
	case FORM_BAD_FLAG:
		buf_fmt(out, zh ? "“投诉”选项的值无效，请刷新页面后重新填写。"
			: "The complaint box sent an invalid value; please reload the page and fill it in again.");
		break;
	case FORM_COMPLAINT_EMPTY:
		buf_fmt(out, zh ? "标记为投诉时，请在意见和建议中写明投诉的内容。"
			: "To make a complaint, please write what it is about in the comment box.");
		break;
	}
}

char *form_answers_json(const form *f, const form_ballot *b)
{
	buf out;
	buf_init(&out, 16 * 1024);
	buf_putc(&out, '{');
	/* Names and keys are [a-z0-9_] (parse.c): nothing to escape. Plain
	 * appends, not buf_fmt: this runs for every ballot. */
	for (size_t q = 0; q < f->n_questions; q++) {
		int a = b->answer[q];
		buf_puts(&out, q ? ",\"" : "\"");
		buf_puts(&out, f->questions[q].name);
		buf_puts(&out, "\":");
		if (a >= 0 && (size_t)a < f->n_levels) {
			buf_putc(&out, '"');
			buf_puts(&out, f->levels[a].key);
			buf_putc(&out, '"');
		} else {
			buf_puts(&out, "null");
		}
	}
	buf_putc(&out, '}');
	return buf_take(&out);
}
