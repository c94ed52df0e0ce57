/* render.c - writing a form as an HTML <form> element.
 *
 * Only the form itself: the page around it (head, title, intro, styles,
 * language switch) is the collector's. The markup works without script:
 * radio groups with `required` let the browser ask for missing answers,
 * and a rejected submission is shown again with its values filled in and
 * the problem named at the top. Every text goes through %h. Classes used,
 * for the collector's stylesheet: error-summary, q, overall, has-error,
 * hint, opt, comment, complaint. */
#include "forms/form.h"

#include "common/fmt.h"
#include "common/str.h"

static const char *value_of(const form_view *v, const char *name)
{
	return v->values ? kv_get(v->values, name) : NULL;
}

static void render_question(const form *f, const form_view *v, size_t qi, int l, buf *out)
{
	const form_question *q = &f->questions[qi];
	const form_error *e = v->error;
	bool bad = e && e->problem != FORM_OK && e->question == (int)qi;
	const char *answer = value_of(v, q->name);

	buf_fmt(out, "<fieldset class=\"q%s%s\" id=\"f-%h\"><legend>%zu. %h</legend>",
		q->overall ? " overall" : "", bad ? " has-error" : "", q->name, qi + 1, q->label[l]);
	if (q->hint[l])
		buf_fmt(out, "<p class=\"hint\">%h</p>", q->hint[l]);
	for (size_t i = 0; i < f->n_levels; i++) {
		const form_level *lv = &f->levels[i];
		buf_fmt(out, "<div class=\"opt\"><input type=\"radio\" name=\"%h\" id=\"%h-%h\" "
			"value=\"%h\"%s required><label for=\"%h-%h\">%h</label></div>",
			q->name, q->name, lv->key, lv->key, str_eq(answer, lv->key) ? " checked" : "",
			q->name, lv->key, lv->label[l]);
	}
	buf_puts(out, "</fieldset>\n");
}

static void render_comment(const form *f, const form_view *v, int l, buf *out)
{
	const form_error *e = v->error;
	bool bad = e && (e->problem == FORM_COMMENT_TOO_LONG || e->problem == FORM_COMPLAINT_EMPTY);
	const char *comment = value_of(v, "comment");
	const char *complaint = value_of(v, "complaint");

	/* An HTML parser drops one newline right after <textarea>, so a value
	 * that starts with one needs another in front. */
	buf_fmt(out, "<div class=\"comment%s\"><label for=\"comment\">%h</label>"
		"<textarea id=\"comment\" name=\"comment\" maxlength=\"%d\" rows=\"4\">%s%h</textarea></div>\n",
		bad ? " has-error" : "", f->comment_label[l], f->comment_max,
		comment && (comment[0] == '\n' || comment[0] == '\r') ? "\n" : "", comment);
	buf_fmt(out, "<div class=\"opt complaint\"><input type=\"checkbox\" id=\"complaint\" "
		"name=\"complaint\" value=\"1\"%s><label for=\"complaint\">%h</label></div>\n",
		str_eq(complaint, "1") ? " checked" : "", f->complaint_label[l]);
}

void form_render(const form *f, const form_view *v, buf *out)
{
	int l = v->lang == FORM_EN ? FORM_EN : FORM_ZH;
	buf_fmt(out, "<form method=\"post\" action=\"%h\" accept-charset=\"utf-8\">\n", v->action);
	if (v->error && v->error->problem != FORM_OK) {
		buf_puts(out, "<p class=\"error-summary\" role=\"alert\">");
		form_error_html(f, v->error, (enum form_lang)l, out);
		buf_puts(out, "</p>\n");
	}
	for (size_t i = 0; i < f->n_questions; i++)
		render_question(f, v, i, l, out);
	if (f->has_comment)
		render_comment(f, v, l, out);
	if (v->hidden_name)
		buf_fmt(out, "<input type=\"hidden\" name=\"%h\" value=\"%h\">\n",
			v->hidden_name, v->hidden_value);
	buf_fmt(out, "<button type=\"submit\">%s</button></form>", l == FORM_EN ? "Submit" : "提交评价");
}
