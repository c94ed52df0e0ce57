/* ballot.c - a unit's form and its ballots, for both ways in:
 *   /u/<token>               poster QR codes, open rounds, anyone
 *   /c/<code>/<token>        ballot codes (codes.c finds the code first)
 * A ballot is checked here (form token, fields against the form's table,
 * vote cookie and per-address limit for open rounds) and queued for the
 * writer; the connection waits suspended until its batch is committed. */
#include "col.h"

#include <string.h>
#include <time.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/http.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/str.h"

/* Parsed forms by round. A round's form is frozen when the round is
 * created, so an entry never goes stale; the handler is single-threaded. */
static struct {
	char round[72];
	form *form;
} forms[16];
static unsigned forms_next;
static sqlite3_stmt *st_find;   /* the unit lookup, compiled once */
static sqlite3_stmt *st_version; /* PRAGMA data_version, for the lookup cache */

/* Recent lookups, by token, each with its blank form page per language
 * (built on first use, TOKEN_MARK where the form token goes). Direct-mapped;
 * a collision replaces the older entry. An entry is valid while the
 * database's data_version has not moved since it was filled: the version
 * moves whenever another connection (the writer, the command line, the
 * aggregator) commits. Reading it takes a read transaction (two fcntl
 * locks), so it is read at most every FRESH_MS: a change made elsewhere (a
 * round closed, units imported) shows on pages within that time. Ballots do
 * not depend on it: the writer checks the round's state in the transaction
 * that stores them. In the rush after a poster goes up, a form GET then
 * costs no lookup and no rendering, and a ballot no lookup and no building
 * of its answer. */
#define TOKEN_MARK "\x02"
enum { UNIT_CACHE = 1024, FRESH_MS = 20 };
static struct {
	col_target t;
	int64_t version;            /* data_version when filled; 0: empty */
	char *page[2];              /* by form_lang; NULL until first shown */
	struct MHD_Response *stored[2];   /* the 303 after a ballot, by form_lang */
	time_t stored_at[2];        /* the second its cookie's Max-Age counts from */
} units_seen[UNIT_CACHE];

static void drop_pages(unsigned slot)
{
	for (int l = 0; l < 2; l++) {
		free(units_seen[slot].page[l]);
		units_seen[slot].page[l] = NULL;
		if (units_seen[slot].stored[l])
			MHD_destroy_response(units_seen[slot].stored[l]);
		units_seen[slot].stored[l] = NULL;
	}
}

void col_forms_free(void)
{
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
		if (forms[i].form)
			form_free(forms[i].form);
	for (unsigned i = 0; i < UNIT_CACHE; i++)
		drop_pages(i);
	db_finalize(st_find);
	db_finalize(st_version);
}

static const form *cached_form(const char *round)
{
	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
		if (forms[i].form && strcmp(forms[i].round, round) == 0)
			return forms[i].form;
	char *src = db_text(col_db(), "SELECT form_src FROM rounds WHERE id = ?", "t", round);
	char err[256];
	form *f = src ? form_parse(src, round, err, sizeof err) : NULL;
	free(src);
	if (!f) {
		log_error("round %s: its stored form does not parse", round);
		return NULL;
	}
	unsigned slot = forms_next++ % (sizeof forms / sizeof forms[0]);
	if (forms[slot].form)
		form_free(forms[slot].form);
	str_copy(forms[slot].round, sizeof forms[slot].round, round);
	forms[slot].form = f;
	return f;
}

static bool valid_token(const char *t)
{
	if (strlen(t) != COL_TOKEN_LEN)
		return false;
	for (; *t; t++)
		if (!strchr("23456789abcdefghjkmnpqrstuvwxyz", *t))
			return false;
	return true;
}

static int64_t data_version(void)
{
	if (!st_version)
		st_version = db_prepare(col_db(), "PRAGMA data_version", NULL);
	int64_t v = db_step(st_version) == SQLITE_ROW ? sqlite3_column_int64(st_version, 0) : -1;
	sqlite3_reset(st_version);
	return v + 1;   /* never 0, which marks an empty entry */
}

/* data_version as of at most FRESH_MS ago. */
static int64_t recent_version(void)
{
	static int64_t version;
	static int64_t checked_ms;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (!version || now_ms - checked_ms >= FRESH_MS) {
		version = data_version();
		checked_ms = now_ms;
	}
	return version;
}

static unsigned token_slot(const char *token)
{
	unsigned h = 2166136261u;
	for (; *token; token++)
		h = (h ^ (unsigned char)*token) * 16777619u;
	return h % UNIT_CACHE;
}

/* The cache slot holding a lookup of token made at version, or -1. */
static int current_slot(const char *token, int64_t version)
{
	unsigned slot = token_slot(token);
	return units_seen[slot].version == version &&
		strcmp(units_seen[slot].t.token, token) == 0 ? (int)slot : -1;
}

static void find_unit_in_db(const char *token, col_target *t);

void col_find_unit(const char *token, col_target *t)
{
	memset(t, 0, sizeof *t);
	if (!valid_token(token))
		return;
	int64_t version = recent_version();   /* read before the lookup it vouches for */
	int slot = current_slot(token, version);
	if (slot >= 0) {
		*t = units_seen[slot].t;
		/* the form cache may have moved on: look the form up again */
		t->form = t->form ? cached_form(t->round) : NULL;
		return;
	}
	find_unit_in_db(token, t);
	if (t->unit_found) {
		slot = (int)token_slot(token);
		drop_pages((unsigned)slot);
		units_seen[slot].t = *t;
		units_seen[slot].version = version;
	}
}

static void find_unit_in_db(const char *token, col_target *t)
{
	if (!st_find)
		st_find = db_prepare(col_db(),
			"SELECT u.id, u.name_zh, u.name_en, r.id, r.state, r.title_zh, r.title_en, "
			"coalesce(r.closes_at, 0), r.mode FROM units u "
			"LEFT JOIN round_units ru ON ru.unit = u.id LEFT JOIN rounds r ON r.id = ru.round "
			"WHERE u.token = ? ORDER BY r.state = 'open' DESC, r.closed_at DESC LIMIT 1", NULL);
	sqlite3_stmt *st = st_find;
	db_rebind(st, "t", token);
	if (db_step(st) == SQLITE_ROW) {
		t->unit_found = true;
		str_copy(t->token, sizeof t->token, token);
		str_copy(t->unit, sizeof t->unit, db_col_text(st, 0));
		str_copy(t->name[FORM_ZH], sizeof t->name[0], db_col_text(st, 1));
		str_copy(t->name[FORM_EN], sizeof t->name[1], db_col_text(st, 2));
		t->has_round = sqlite3_column_type(st, 3) != SQLITE_NULL;
		str_copy(t->round, sizeof t->round, db_col_text(st, 3));
		str_copy(t->state, sizeof t->state, db_col_text(st, 4));
		str_copy(t->round_title[FORM_ZH], sizeof t->round_title[0], db_col_text(st, 5));
		str_copy(t->round_title[FORM_EN], sizeof t->round_title[1], db_col_text(st, 6));
		t->closes_at = sqlite3_column_int64(st, 7);
		t->code_round = strcmp(db_col_text(st, 8), "code") == 0;
		col_cookie_value(t);
	}
	sqlite3_reset(st);
	if (t->has_round && strcmp(t->state, "open") == 0)
		t->form = cached_form(t->round);
}

enum MHD_Result col_unit_unavailable(struct MHD_Connection *c, enum form_lang lang, const col_target *t)
{
	if (!t->unit_found)
		return col_message(c, 404, lang, ZH_EN(lang, "未找到测评单位", "Unit not found"),
			ZH_EN(lang, "二维码可能已失效或链接不完整。请重新扫描张贴的二维码，或联系组织部门。",
				"The QR code may be out of date or the link incomplete. Scan the posted code "
				"again or ask the organising office."));
	if (!t->has_round)
		return col_message(c, 404, lang, ZH_EN(lang, "目前没有进行中的测评", "No appraisal is open"),
			ZH_EN(lang, "该单位目前没有开放的测评。测评开始后，扫描同一个二维码即可参加。",
				"This unit has no open appraisal right now. When one opens, the same QR code "
				"will lead to it."));
	if (!t->form && strcmp(t->state, "open") == 0)
		return col_message(c, 503, lang, ZH_EN(lang, "暂时无法显示测评表", "The form is unavailable"),
			ZH_EN(lang, "请稍后再试。", "Please try again later."));
	return col_message(c, 410, lang, ZH_EN(lang, "本轮测评已结束", "This appraisal has closed"),
		ZH_EN(lang, "感谢关注。测评结果将由组织部门汇总后公布。",
			"Thank you for your interest. The organising office will publish the results."));
}

/* The URL a unit's form posts to, and the same page in the other language. */
static void form_urls(const col_target *t, enum form_lang lang, char *self, char *other, size_t n)
{
	const char *l = lang == FORM_EN ? "en" : "zh", *o = lang == FORM_EN ? "zh" : "en";
	if (t->by_code) {
		fmt_into(self, n, "/c/%U/%U?lang=%s", t->code, t->token, l);
		fmt_into(other, n, "/c/%U/%U?lang=%s", t->code, t->token, o);
	} else {
		fmt_into(self, n, "/u/%U?lang=%s", t->token, l);
		fmt_into(other, n, "/u/%U?lang=%s", t->token, o);
	}
}

/* A unit's form page with token in it (TOKEN_MARK for the cached copy). */
static void render_form_page(buf *page, enum form_lang lang, const col_target *t, const kv_list *values,
	const form_error *why, const char *notice, const char *token)
{
	char self[96], other[96];
	form_urls(t, lang, self, other, sizeof self);
	col_page_open(page, lang, t->name[lang], t->name[lang], t->round_title[lang], other);
	if (t->by_code)
		buf_fmt(page, ZH_EN(lang, "<p class=\"progress\">第 %d 个，共 %d 个单位</p>",
			"<p class=\"progress\">Unit %d of %d</p>"), t->done + 1, t->total);
	if (notice)
		buf_fmt(page, "<p class=\"error-summary\" role=\"alert\">%s</p>", notice);
	if (t->form->intro[lang])
		buf_fmt(page, "<p class=\"intro\">%h</p>", t->form->intro[lang]);
	form_view v = { .lang = lang, .action = self, .values = values, .error = why,
		.hidden_name = "ft", .hidden_value = token };
	form_render(t->form, &v, page);
	col_page_close(page, lang);
}

/* The cached blank page of a poster-flow unit, or NULL when t's lookup has
 * left the cache. */
static const char *blank_page(const col_target *t, enum form_lang lang)
{
	int slot = current_slot(t->token, recent_version());
	if (slot < 0)
		return NULL;
	char **page = &units_seen[slot].page[lang];
	if (!*page) {
		buf b;
		buf_init(&b, COL_PAGE_MAX);
		render_form_page(&b, lang, t, NULL, NULL, NULL, TOKEN_MARK);
		*page = buf_take(&b);
	}
	return *page;
}

enum MHD_Result col_form_page(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const col_target *t, const kv_list *values, const form_error *why, const char *notice)
{
	char token[64];
	col_token_make(t, token, sizeof token);
	const char *blank = values || why || notice || t->by_code ? NULL : blank_page(t, lang);
	/* The last mark: everything after the hidden field is the form file's
	 * text (no control characters) and fixed markup, while a unit name or
	 * round title before it might hold anything. */
	const char *mark = blank ? strrchr(blank, TOKEN_MARK[0]) : NULL;
	if (mark) {   /* the usual case: the cached page, with this request's token */
		size_t head = (size_t)(mark - blank), n = strlen(token), tail = strlen(mark + 1);
		char *body = xmalloc(head + n + tail + 1);
		memcpy(body, blank, head);
		memcpy(body + head, token, n);
		memcpy(body + head + n, mark + 1, tail + 1);
		return http_send_owned(c, status, "text/html; charset=utf-8", body, head + n + tail,
			HTTP_NO_STORE, NULL);
	}
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	render_form_page(&page, lang, t, values, why, notice, token);
	return col_send_page(c, status, &page, NULL);
}

static enum MHD_Result thanks_page(struct MHD_Connection *c, enum form_lang lang, const col_target *t)
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
	buf_puts(&html, ZH_EN(lang, "。</p><p class=\"message\">评价是匿名的：系统不记录您的姓名、设备或网络地址，"
		"单位只能看到参评人数足够多时的汇总结果。",
		".</p><p class=\"message\">Your ballot is anonymous: no name, device or network address is "
		"recorded, and units only see totals, and only once enough people have taken part."));
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	col_page_open(&page, lang, ZH_EN(lang, "感谢您的评价", "Thank you"),
		ZH_EN(lang, "感谢您的评价！", "Thank you!"), t->has_round ? t->name[lang] : NULL, NULL);
	buf_fmt(&page, "<p class=\"message\">%s</p>", buf_str(&html));
	col_page_close(&page, lang);
	buf_free(&html);
	return col_send_page(c, 200, &page, NULL);
}

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

static col_job *make_job(const col_target *t, const form_ballot *b, struct MHD_Connection *c)
{
	/* Not zeroed (it is ~2 KB, one a ballot): every field is set here, the
	 * questions and levels up to n_answers. */
	col_job *job = xmalloc(sizeof *job);
	job->next = NULL;
	job->conn = c;
	str_copy(job->round, sizeof job->round, t->round);
	str_copy(job->unit, sizeof job->unit, t->unit);
	/* Open (poster) ballots belong to 群众 (DESIGN.md §2); a code brings its group. */
	str_copy(job->grp, sizeof job->grp, t->by_code ? t->grp : "群众");
	job->by_code = t->by_code;
	memcpy(job->code_hash, t->code_hash, sizeof job->code_hash);
	job->n_answers = t->form->n_questions;
	for (size_t q = 0; q < t->form->n_questions; q++) {
		str_copy(job->question[q], FORM_NAME_MAX, t->form->questions[q].name);
		str_copy(job->level[q], FORM_NAME_MAX, t->form->levels[b->answer[q]].key);
	}
	job->answers_json = form_answers_json(t->form, b);
	job->comment = b->comment ? xstrdup(b->comment) : NULL;
	job->complaint = b->complaint;
	job->result = COL_PENDING;
	return job;
}

static enum MHD_Result bad_submission(struct MHD_Connection *c, enum form_lang lang, const char *html)
{
	return col_message(c, 400, lang, ZH_EN(lang, "提交的内容有误", "Bad submission"), html);
}

/* Checks that need no parsing: framing, size, the open round's guards.
 * True when the request was answered (*r holds the result). */
static bool refused_early(struct MHD_Connection *c, col_request *rq, const col_target *t, enum MHD_Result *r)
{
	enum form_lang lang = rq->lang;
	*r = MHD_YES;
	if (!is_form_encoded(c))
		*r = col_message(c, 415, lang, ZH_EN(lang, "无法识别的提交格式", "Unsupported submission"),
			ZH_EN(lang, "请从测评页面提交表单。", "Please submit the form from the appraisal page."));
	else if (rq->too_large)
		*r = col_message(c, 413, lang, ZH_EN(lang, "提交的内容过长", "Submission too large"),
			ZH_EN(lang, "请缩短意见和建议后重新提交。", "Please shorten your comment and submit again."));
	else if (!t->by_code && col_cookie_voted(c, t))
		*r = col_message(c, 409, lang, ZH_EN(lang, "您已评价过该单位", "You have already rated this unit"),
			ZH_EN(lang, "本轮测评中，这台设备已经提交过对该单位的评价，感谢参与。",
				"This device has already sent a ballot for this unit in this round. Thank you."));
	else if (!t->by_code && !col_limit_take(c, COL_LIMIT_OPEN_BALLOTS))
		*r = col_limited(c, lang, COL_LIMIT_OPEN_BALLOTS);
	else
		return false;
	return true;
}

enum MHD_Result col_take_ballot(struct MHD_Connection *c, col_request *rq, const col_target *t)
{
	enum form_lang lang = rq->lang;
	enum MHD_Result r;
	if (refused_early(c, rq, t, &r))
		return r;
	kv_list fields;
	enum kv_error ke = kv_parse(buf_str(&rq->body), rq->body.len, FORM_MAX_FIELDS + 4, &fields);
	if (ke != KV_OK || memchr(buf_str(&rq->body), '\0', rq->body.len)) {
		kv_free(&fields);
		return bad_submission(c, lang, kv_problem(ke != KV_OK ? ke : KV_BAD_TEXT, lang));
	}
	char *ft = kv_take(&fields, "ft");
	enum col_token_check tc = col_token_check(t, ft, rq->nonce_key);
	free(ft);
	form_ballot b;
	form_error why;
	bool answered = true;
	if (tc == TOKEN_BAD)
		r = bad_submission(c, lang, ZH_EN(lang, "页面已失效。请重新打开测评页面后填写。",
			"This page is no longer valid. Please open the appraisal page again."));
	else if (tc == TOKEN_REPLAYED)
		r = col_message(c, 409, lang, ZH_EN(lang, "这份评价已经提交过", "Already submitted"),
			ZH_EN(lang, "同一页面只能提交一次。您的评价已经保存，无需重复提交。",
				"A page can be submitted once. Your ballot was already saved."));
	else if (form_validate(t->form, &fields, &b, &why) != 0) {
		if (why.problem == FORM_MISSING_ANSWER || why.problem == FORM_COMMENT_TOO_LONG ||
				why.problem == FORM_COMPLAINT_EMPTY) {
			r = col_form_page(c, 422, lang, t, &fields, &why, NULL);
		} else {
			buf html;
			buf_init(&html, 4096);
			form_error_html(t->form, &why, lang, &html);
			r = bad_submission(c, lang, buf_str(&html));
			buf_free(&html);
		}
	} else if (tc == TOKEN_EXPIRED) {
		form_ballot_free(&b);
		r = col_form_page(c, 422, lang, t, &fields, NULL, ZH_EN(lang,
			"页面打开的时间过长。请确认以下选择后重新提交。",
			"This page was open for a long time. Please check your answers and submit again."));
	} else
		answered = false;
	if (answered) {
		kv_free(&fields);
		return r;
	}
	kv_free(&fields);
	if (!col_writer_admit()) {
		form_ballot_free(&b);
		return col_message(c, 503, lang, ZH_EN(lang, "服务正在重启", "The service is restarting"),
			ZH_EN(lang, "您的评价没有保存。请稍等片刻，然后重新提交。",
				"Your ballot was not saved. Please wait a moment and submit it again."));
	}
	col_token_spend(rq->nonce_key);
	rq->target = *t;
	rq->job = make_job(t, &b, c);
	form_ballot_free(&b);
	MHD_suspend_connection(c);   /* until its batch is committed */
	col_writer_submit(rq->job);
	return MHD_YES;
}

/* The 303 that answers a stored poster ballot: to the thank-you page, with
 * the vote cookie. NULL if out of memory. */
static struct MHD_Response *stored_reply(const col_target *t, enum form_lang lang)
{
	char next[128], cookie[160];
	fmt_into(next, sizeof next, "/u/%U/done?lang=%s", t->token, lang == FORM_EN ? "en" : "zh");
	col_cookie_make(t, cookie, sizeof cookie);
	return http_response("text/plain; charset=utf-8", "", 0, HTTP_NO_STORE,
		(const char *const[]){ "Location", next, "Set-Cookie", cookie, NULL });
}

/* Answer a stored poster ballot. Every ballot of a unit within a second
 * gets the same 303 (the cookie's Max-Age counts seconds), so it is built
 * once a second and queued again: built per ballot (each header allocated
 * on its own), it took ~6% of the handler thread in a rush. */
static enum MHD_Result answer_stored(struct MHD_Connection *c, const col_target *t, enum form_lang lang)
{
	/* The slot's lookup may be newer than the ballot's (its round closed
	 * and another opened meanwhile): then its cookie is not this one's. */
	int slot = current_slot(t->token, recent_version());
	if (slot < 0 || strcmp(units_seen[slot].t.vote_cookie, t->vote_cookie) != 0 ||
			units_seen[slot].t.closes_at != t->closes_at)
		return http_queue_once(c, 303, stored_reply(t, lang));
	struct MHD_Response **kept = &units_seen[slot].stored[lang];
	time_t now = time(NULL);
	if (!*kept || units_seen[slot].stored_at[lang] != now) {
		if (*kept)
			MHD_destroy_response(*kept);
		*kept = stored_reply(t, lang);
		units_seen[slot].stored_at[lang] = now;
	}
	return *kept ? MHD_queue_response(c, 303, *kept) : MHD_NO;
}

enum MHD_Result col_answer_ballot(struct MHD_Connection *c, col_request *rq)
{
	enum form_lang lang = rq->lang;
	const col_target *t = &rq->target;
	char next[128];
	col_writer_answered();
	rq->answered = true;
	switch (rq->job->result) {
	case COL_STORED:
		if (t->by_code) {
			col_code_next_url(t, lang, next, sizeof next);
			return http_send(c, 303, "text/plain; charset=utf-8", "", 0, HTTP_NO_STORE,
				(const char *const[]){ "Location", next, NULL });
		}
		return answer_stored(c, t, lang);
	case COL_ROUND_CLOSED:
		return col_message(c, 410, lang, ZH_EN(lang, "本轮测评已结束", "This appraisal has closed"),
			ZH_EN(lang, "您提交时测评已经结束，这份评价没有计入。",
				"The appraisal closed before your ballot arrived; it was not counted."));
	case COL_CODE_SPENT:
		return col_code_refused(c, lang);
	default:
		col_token_unspend(rq->nonce_key);
		return col_message(c, 503, lang, ZH_EN(lang, "暂时无法保存", "Could not save"),
			ZH_EN(lang, "您的评价没有保存成功，请稍后重新提交。",
				"Your ballot was not saved. Please submit it again in a moment."));
	}
}

static enum MHD_Result code_round_only(struct MHD_Connection *c, enum form_lang lang)
{
	return col_message(c, 403, lang, ZH_EN(lang, "本轮测评需使用测评码", "This appraisal needs a ballot code"),
		ZH_EN(lang, "请扫描测评码纸条上的二维码，或<a href=\"/c?lang=zh\">在此输入测评码</a>。",
			"Scan the QR code on your ballot slip, or <a href=\"/c?lang=en\">type your code here</a>."));
}

enum MHD_Result col_unit_route(struct MHD_Connection *c, col_request *rq, const char *rest)
{
	enum form_lang lang = rq->lang;
	char token[COL_TOKEN_LEN + 1] = "";
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	bool done = slash && strcmp(slash, "/done") == 0;
	if ((slash && !done) || n != COL_TOKEN_LEN)
		return col_unit_unavailable(c, lang, &(col_target){ 0 });
	memcpy(token, rest, n);
	col_target t;
	col_find_unit(token, &t);
	if (!t.unit_found)
		return col_unit_unavailable(c, lang, &t);
	if (rq->method == M_OTHER || (done && rq->method == M_POST))
		return col_not_allowed(c, lang, done ? "GET, HEAD" : "GET, HEAD, POST");
	if (done)
		return thanks_page(c, lang, &t);
	if (!t.form)
		return col_unit_unavailable(c, lang, &t);
	if (t.code_round)
		return code_round_only(c, lang);
	if (rq->method == M_POST)
		return col_take_ballot(c, rq, &t);
	if (col_cookie_voted(c, &t))
		return col_message(c, 200, lang, ZH_EN(lang, "您已评价过该单位", "You have rated this unit"),
			ZH_EN(lang, "感谢参与！本轮测评中，这台设备已经提交过对该单位的评价。",
				"Thank you! This device has already sent a ballot for this unit in this round."));
	return col_form_page(c, 200, lang, &t, NULL, NULL, NULL);
}
