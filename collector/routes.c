/* routes.c - the collector's request handler.
 *
 *   GET  /u/<token>          the rating form of the unit's open round
 *   POST /u/<token>          a ballot: checked, queued, answered 303 once committed
 *   GET  /u/<token>/done     the thank-you page
 *   GET  /static/form.css    the stylesheet
 *   GET  /healthz            "ok" when the database answers
 *
 * libmicrohttpd calls the handler several times per request. The first call
 * only sets up state: answering on the first call makes it close keep-alive
 * connections (DESIGN.md §5). POST bodies are gathered up to COL_BODY_MAX.
 * A valid ballot goes to the writer (writer.c) and the connection is
 * suspended until its batch is committed; then the handler runs once more
 * and answers. Nothing here logs a request: no address, code or ballot. */
#include "col.h"

#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/http.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/schema.h"
#include "common/str.h"

extern const char col_css[], col_css_end[];

enum method { M_GET, M_HEAD, M_POST, M_OTHER };
enum { TOKEN_LEN = 8, PAGE_MAX = 256 * 1024 };

typedef struct request {
	enum method method;
	buf body;
	bool too_large;
	col_job *job;                 /* set once the ballot is queued */
	char token[TOKEN_LEN + 1];
	enum form_lang lang;
} request;

/* What a token leads to. */
typedef struct target {
	bool unit_found, has_round;
	char unit[128];
	char name[2][512];
	char round[72];
	char state[16];
	char round_title[2][512];
	int64_t closes_at;
	const form *form;             /* owned by the cache */
} target;

static sqlite3 *rdb;

/* Parsed forms by round. A round's form is frozen when it is created, so
 * an entry never goes stale; the handler is single-threaded. */
static struct {
	char round[72];
	form *form;
} cache[16];
static unsigned cache_next;

int col_routes_init(const char *path, char *err, size_t errsize)
{
	rdb = schema_open(path, DB_READWRITE, err, errsize);
	return rdb ? 0 : -1;
}

void col_routes_free(void)
{
	for (size_t i = 0; i < sizeof cache / sizeof cache[0]; i++)
		if (cache[i].form)
			form_free(cache[i].form);
	db_close(rdb);
}

static const form *cached_form(const char *round)
{
	for (size_t i = 0; i < sizeof cache / sizeof cache[0]; i++)
		if (cache[i].form && strcmp(cache[i].round, round) == 0)
			return cache[i].form;
	char *src = db_text(rdb, "SELECT form_src FROM rounds WHERE id = ?", "t", round);
	char err[256];
	form *f = src ? form_parse(src, round, err, sizeof err) : NULL;
	free(src);
	if (!f) {
		log_error("round %s: its stored form does not parse", round);
		return NULL;
	}
	unsigned slot = cache_next++ % (sizeof cache / sizeof cache[0]);
	if (cache[slot].form)
		form_free(cache[slot].form);
	str_copy(cache[slot].round, sizeof cache[slot].round, round);
	cache[slot].form = f;
	return f;
}

static bool valid_token(const char *t)
{
	if (strlen(t) != TOKEN_LEN)
		return false;
	for (; *t; t++)
		if (!strchr("23456789abcdefghjkmnpqrstuvwxyz", *t))
			return false;
	return true;
}

/* Find the unit behind a token and its open round (else its latest closed one). */
static void lookup(const char *token, target *t)
{
	memset(t, 0, sizeof *t);
	sqlite3_stmt *st = db_prepare(rdb,
		"SELECT u.id, u.name_zh, u.name_en, r.id, r.state, r.title_zh, r.title_en, "
		"coalesce(r.closes_at, 0) FROM units u "
		"LEFT JOIN round_units ru ON ru.unit = u.id LEFT JOIN rounds r ON r.id = ru.round "
		"WHERE u.token = ? ORDER BY r.state = 'open' DESC, r.closed_at DESC LIMIT 1", "t", token);
	if (db_step(st) == SQLITE_ROW) {
		t->unit_found = true;
		str_copy(t->unit, sizeof t->unit, db_col_text(st, 0));
		str_copy(t->name[FORM_ZH], sizeof t->name[0], db_col_text(st, 1));
		str_copy(t->name[FORM_EN], sizeof t->name[1], db_col_text(st, 2));
		t->has_round = sqlite3_column_type(st, 3) != SQLITE_NULL;
		str_copy(t->round, sizeof t->round, db_col_text(st, 3));
		str_copy(t->state, sizeof t->state, db_col_text(st, 4));
		str_copy(t->round_title[FORM_ZH], sizeof t->round_title[0], db_col_text(st, 5));
		str_copy(t->round_title[FORM_EN], sizeof t->round_title[1], db_col_text(st, 6));
		t->closes_at = sqlite3_column_int64(st, 7);
	}
	db_finalize(st);
	if (t->has_round && strcmp(t->state, "open") == 0)
		t->form = cached_form(t->round);
}

/* ---- answers ---- */

static enum MHD_Result send_page(struct MHD_Connection *c, unsigned status, buf *page,
	const char *extra_name, const char *extra_value)
{
	enum MHD_Result r = http_send(c, status, "text/html; charset=utf-8", buf_str(page), page->len,
		HTTP_NO_STORE, extra_name, extra_value);
	buf_free(page);
	return r;
}

static enum MHD_Result message(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const char *heading, const char *html)
{
	buf page;
	buf_init(&page, PAGE_MAX);
	col_page_message(&page, lang, heading, html);
	return send_page(c, status, &page, NULL, NULL);
}

#define ZH_EN(lang, zh, en) ((lang) == FORM_EN ? (en) : (zh))

static enum MHD_Result not_allowed(struct MHD_Connection *c, enum form_lang lang, const char *allow)
{
	buf page;
	buf_init(&page, PAGE_MAX);
	col_page_message(&page, lang, ZH_EN(lang, "不支持的请求方式", "Method not allowed"),
		ZH_EN(lang, "此地址只能用浏览器打开。请扫描二维码或从测评页面提交。",
			"This address is for a web browser. Scan the QR code or submit from the form page."));
	return send_page(c, 405, &page, "Allow", allow);
}

static enum MHD_Result unit_unavailable(struct MHD_Connection *c, enum form_lang lang, const target *t)
{
	if (!t->unit_found)
		return message(c, 404, lang, ZH_EN(lang, "未找到测评单位", "Unit not found"),
			ZH_EN(lang, "二维码可能已失效或链接不完整。请重新扫描张贴的二维码，或联系组织部门。",
				"The QR code may be out of date or the link incomplete. Scan the posted code "
				"again or ask the organising office."));
	if (!t->has_round)
		return message(c, 404, lang, ZH_EN(lang, "目前没有进行中的测评", "No appraisal is open"),
			ZH_EN(lang, "该单位目前没有开放的测评。测评开始后，扫描同一个二维码即可参加。",
				"This unit has no open appraisal right now. When one opens, the same QR code "
				"will lead to it."));
	if (!t->form && strcmp(t->state, "open") == 0)
		return message(c, 503, lang, ZH_EN(lang, "暂时无法显示测评表", "The form is unavailable"),
			ZH_EN(lang, "请稍后再试。", "Please try again later."));
	return message(c, 410, lang, ZH_EN(lang, "本轮测评已结束", "This appraisal has closed"),
		ZH_EN(lang, "感谢关注。测评结果将由组织部门汇总后公布。",
			"Thank you for your interest. The organising office will publish the results."));
}

static void lang_urls(const char *token, enum form_lang lang, char *self, char *other, size_t n)
{
	fmt_into(self, n, "/u/%U?lang=%s", token, lang == FORM_EN ? "en" : "zh");
	fmt_into(other, n, "/u/%U?lang=%s", token, lang == FORM_EN ? "zh" : "en");
}

static enum MHD_Result form_page(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const char *token, const target *t, const kv_list *values, const form_error *why)
{
	char self[64], other[64];
	lang_urls(token, lang, self, other, sizeof self);
	buf page;
	buf_init(&page, PAGE_MAX);
	col_page_open(&page, lang, t->name[lang], t->name[lang], t->round_title[lang], other);
	if (t->form->intro[lang])
		buf_fmt(&page, "<p class=\"intro\">%h</p>", t->form->intro[lang]);
	form_view v = { .lang = lang, .action = self, .values = values, .error = why };
	form_render(t->form, &v, &page);
	col_page_close(&page, lang);
	return send_page(c, status, &page, NULL, NULL);
}

static enum MHD_Result thanks_page(struct MHD_Connection *c, enum form_lang lang, const target *t)
{
	buf html;
	buf_init(&html, 4096);
	buf_fmt(&html, "%s", ZH_EN(lang, "您的评价已保存。测评结果将在本轮测评结束后由组织部门汇总公布",
		"Your ballot has been saved. The organising office will publish the results after the "
		"appraisal closes"));
	if (t->closes_at > 0) {
		char when[64];
		struct tm tm;
		time_t at = (time_t)t->closes_at;
		localtime_r(&at, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		buf_fmt(&html, ZH_EN(lang, "（截止时间：%h）", " (closing %h)"), when);
	}
	buf_fmt(&html, "%s", ZH_EN(lang, "。</p><p class=\"message\">评价是匿名的：系统不记录您的姓名、设备或网络地址，"
		"单位只能看到不少于 5 人参评后的汇总结果。",
		".</p><p class=\"message\">Your ballot is anonymous: no name, device or network address is "
		"recorded, and units only see totals once at least 5 people have taken part."));
	buf page;
	buf_init(&page, PAGE_MAX);
	col_page_open(&page, lang, ZH_EN(lang, "感谢您的评价", "Thank you"),
		ZH_EN(lang, "感谢您的评价！", "Thank you!"), t->has_round ? t->name[lang] : NULL, NULL);
	buf_fmt(&page, "<p class=\"message\">%s</p>", buf_str(&html));
	col_page_close(&page, lang);
	buf_free(&html);
	return send_page(c, 200, &page, NULL, NULL);
}

/* ---- ballots ---- */

static bool is_form_encoded(struct MHD_Connection *c)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	const char *want = "application/x-www-form-urlencoded";
	return ct && strncasecmp(ct, want, strlen(want)) == 0 &&
		(ct[strlen(want)] == '\0' || ct[strlen(want)] == ';');
}

static const char *kv_problem(enum kv_error e, enum form_lang lang)
{
	switch (e) {
	case KV_BAD_ESCAPE:
		return ZH_EN(lang, "提交的内容编码有误（百分号转义不完整）。", "The submission is badly encoded (an incomplete percent escape).");
	case KV_BAD_TEXT:
		return ZH_EN(lang, "提交的内容含有无效字符（不是有效的 UTF-8 文本）。", "The submission contains invalid characters (not valid UTF-8 text).");
	case KV_DUPLICATE:
		return ZH_EN(lang, "同一项内容提交了两次。", "A field was submitted twice.");
	case KV_TOO_MANY:
		return ZH_EN(lang, "提交的项目过多。", "The submission has too many fields.");
	default:
		return ZH_EN(lang, "提交的内容格式有误。", "The submission is malformed.");
	}
}

static col_job *make_job(const target *t, const form_ballot *b, struct MHD_Connection *c)
{
	col_job *job = xcalloc(1, sizeof *job);
	job->conn = c;
	str_copy(job->round, sizeof job->round, t->round);
	str_copy(job->unit, sizeof job->unit, t->unit);
	str_copy(job->grp, sizeof job->grp, "群众"); /* open ballots belong to 群众 (DESIGN.md §2) */
	job->n_answers = t->form->n_questions;
	for (size_t q = 0; q < t->form->n_questions; q++) {
		str_copy(job->question[q], FORM_NAME_MAX, t->form->questions[q].name);
		str_copy(job->level[q], FORM_NAME_MAX, t->form->levels[b->answer[q]].key);
	}
	job->answers_json = form_answers_json(t->form, b);
	job->comment = b->comment ? xstrdup(b->comment) : NULL;
	job->complaint = b->complaint;
	return job;
}

static enum MHD_Result take_ballot(struct MHD_Connection *c, request *rq, const target *t)
{
	enum form_lang lang = rq->lang;
	if (!is_form_encoded(c))
		return message(c, 415, lang, ZH_EN(lang, "无法识别的提交格式", "Unsupported submission"),
			ZH_EN(lang, "请从测评页面提交表单。", "Please submit the form from the appraisal page."));
	if (rq->too_large)
		return message(c, 413, lang, ZH_EN(lang, "提交的内容过长", "Submission too large"),
			ZH_EN(lang, "请缩短意见和建议后重新提交。", "Please shorten your comment and submit again."));
	kv_list fields;
	enum kv_error ke = kv_parse(buf_str(&rq->body), rq->body.len, FORM_MAX_FIELDS + 4, &fields);
	if (ke != KV_OK || memchr(buf_str(&rq->body), '\0', rq->body.len)) {
		kv_free(&fields);
		return message(c, 400, lang, ZH_EN(lang, "提交的内容有误", "Bad submission"),
			ke != KV_OK ? kv_problem(ke, lang) : kv_problem(KV_BAD_TEXT, lang));
	}
	form_ballot b;
	form_error why;
	if (form_validate(t->form, &fields, &b, &why) != 0) {
		enum MHD_Result r;
		if (why.problem == FORM_MISSING_ANSWER || why.problem == FORM_COMMENT_TOO_LONG ||
				why.problem == FORM_COMPLAINT_EMPTY) {
			r = form_page(c, 422, lang, rq->token, t, &fields, &why);
		} else {
			buf html;
			buf_init(&html, 4096);
			form_error_html(t->form, &why, lang, &html);
			r = message(c, 400, lang, ZH_EN(lang, "提交的内容有误", "Bad submission"), buf_str(&html));
			buf_free(&html);
		}
		kv_free(&fields);
		return r;
	}
	kv_free(&fields);
	rq->job = make_job(t, &b, c);
	form_ballot_free(&b);
	MHD_suspend_connection(c);
	col_writer_submit(rq->job);
	return MHD_YES;
}

/* The handler runs again once the writer has resumed the connection. */
static enum MHD_Result answer_ballot(struct MHD_Connection *c, request *rq)
{
	enum form_lang lang = rq->lang;
	switch (rq->job->result) {
	case COL_STORED: {
		char done[64];
		fmt_into(done, sizeof done, "/u/%U/done?lang=%s", rq->token, lang == FORM_EN ? "en" : "zh");
		return http_send(c, 303, "text/plain; charset=utf-8", "", 0, HTTP_NO_STORE, "Location", done);
	}
	case COL_ROUND_CLOSED:
		return message(c, 410, lang, ZH_EN(lang, "本轮测评已结束", "This appraisal has closed"),
			ZH_EN(lang, "您提交时测评已经结束，这份评价没有计入。",
				"The appraisal closed before your ballot arrived; it was not counted."));
	default:
		return message(c, 503, lang, ZH_EN(lang, "暂时无法保存", "Could not save"),
			ZH_EN(lang, "您的评价没有保存成功，请稍后重新提交。",
				"Your ballot was not saved. Please submit it again in a moment."));
	}
}

/* ---- routing ---- */

static enum MHD_Result unit_route(struct MHD_Connection *c, request *rq, const char *rest)
{
	enum form_lang lang = rq->lang;
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	bool done = slash && strcmp(slash, "/done") == 0;
	if ((slash && !done) || n != TOKEN_LEN)
		return unit_unavailable(c, lang, &(target){ 0 });
	memcpy(rq->token, rest, n);
	rq->token[n] = '\0';
	if (!valid_token(rq->token))
		return unit_unavailable(c, lang, &(target){ 0 });
	if (rq->method == M_OTHER || (done && rq->method == M_POST))
		return not_allowed(c, lang, done ? "GET, HEAD" : "GET, HEAD, POST");
	target t;
	lookup(rq->token, &t);
	if (done)
		return t.unit_found ? thanks_page(c, lang, &t) : unit_unavailable(c, lang, &t);
	if (!t.form)
		return unit_unavailable(c, lang, &t);
	if (rq->method == M_POST)
		return take_ballot(c, rq, &t);
	return form_page(c, 200, lang, rq->token, &t, NULL, NULL);
}

static enum MHD_Result route(struct MHD_Connection *c, request *rq, const char *url)
{
	enum form_lang lang = rq->lang;
	if (str_starts(url, "/u/"))
		return unit_route(c, rq, url + 3);
	bool readonly = rq->method == M_GET || rq->method == M_HEAD;
	if (strcmp(url, "/static/form.css") == 0)
		return readonly ? http_send(c, 200, "text/css; charset=utf-8", col_css,
			(size_t)(col_css_end - col_css), HTTP_IMMUTABLE, NULL, NULL)
			: not_allowed(c, lang, "GET, HEAD");
	if (strcmp(url, "/healthz") == 0) {
		if (!readonly)
			return not_allowed(c, lang, "GET, HEAD");
		bool ok = db_int(rdb, 0, "SELECT count(*) FROM meta", NULL) > 0;
		return http_send(c, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "database unavailable\n",
			ok ? 3 : 21, HTTP_NO_STORE, NULL, NULL);
	}
	if (strcmp(url, "/") == 0)
		return readonly ? message(c, 200, lang, ZH_EN(lang, "群众满意度测评", "Satisfaction appraisal"),
			ZH_EN(lang, "请扫描单位张贴的二维码或测评码参加测评。",
				"Scan the QR code posted at a unit, or on your ballot slip, to take part."))
			: not_allowed(c, lang, "GET, HEAD");
	return message(c, 404, lang, ZH_EN(lang, "页面不存在", "Page not found"),
		ZH_EN(lang, "请检查地址，或重新扫描二维码。", "Check the address, or scan the QR code again."));
}

static enum method method_of(const char *m)
{
	if (strcmp(m, "GET") == 0) return M_GET;
	if (strcmp(m, "HEAD") == 0) return M_HEAD;
	if (strcmp(m, "POST") == 0) return M_POST;
	return M_OTHER;
}

enum MHD_Result col_handle(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	(void)version;
	request *rq = *req_cls;
	if (!rq) {
		rq = xcalloc(1, sizeof *rq);
		rq->method = method_of(method);
		rq->lang = http_wants_english(c) ? FORM_EN : FORM_ZH;
		buf_init(&rq->body, COL_BODY_MAX);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		int64_t len;
		*req_cls = rq;
		/* A declared oversized body is refused before it is read (and
		 * before "100 Continue"); the connection then closes. */
		if (cl && str_to_i64(cl, 0, INT64_MAX, &len) && len > COL_BODY_MAX) {
			rq->too_large = true;
			return route(c, rq, url);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (rq->method == M_POST && !rq->too_large &&
				!buf_append(&rq->body, upload_data, *upload_data_size))
			rq->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->job)
		return answer_ballot(c, rq);
	return route(c, rq, url);
}

void col_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
	enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	request *rq = *req_cls;
	if (!rq)
		return;
	buf_free(&rq->body);
	if (rq->job)
		col_job_free(rq->job);
	free(rq);
	*req_cls = NULL;
}
