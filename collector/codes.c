/* codes.c - the ballot-code (测评码) flow.
 *
 *   GET  /c                    a page to type a code from a slip
 *   POST /c                    the typed code -> 303 to /c/<CODE>
 *   GET  /c/<CODE>             the units this code may still rate
 *   GET  /c/<CODE>/<token>     a unit's form (ballot.c), "unit k of n"
 *   POST /c/<CODE>/<token>     its ballot; then on to the next unit
 *   GET  /c/done               the end of the walk
 * An invalid code, a used-up one and one whose scope does not hold the unit
 * get the same answer (col_code_refused), and every refusal costs the
 * address a token from its failure bucket (guard.c), so codes cannot be
 * guessed at speed. Codes never reach a log. */
#include "col.h"

#include <string.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/http.h"
#include "common/str.h"

static unsigned char secret[CODE_SECRET];

void col_codes_init(const unsigned char *server_secret)
{
	memcpy(secret, server_secret, sizeof secret);
}

enum MHD_Result col_code_refused(struct MHD_Connection *c, enum form_lang lang)
{
	col_limit_take(c, COL_LIMIT_CODE_FAILURES);
	return col_message(c, 404, lang, ZH_EN(lang, "测评码无效", "Code not valid"),
		ZH_EN(lang, "这个测评码无效，或已经用完。请核对纸条上的测评码；如有疑问，请联系发放测评码的工作人员。"
			"<br><a href=\"/c?lang=zh\">重新输入测评码</a>",
			"This code is not valid, or it has been used up. Check the code on your slip, or ask "
			"the person who handed it out.<br><a href=\"/c?lang=en\">Type a code again</a>"));
}

/* The rated units in the code's scope, in tree order, with whether the code
 * has rated each: fills t's progress and, when want_token is not NULL,
 * the first unrated unit's token. */
static sqlite3_stmt *scope_units(const col_target *t)
{
	return db_prepare(col_db(),
		"WITH RECURSIVE down(id) AS (SELECT scope FROM codes WHERE hash = ?1"
		"  UNION SELECT u.id FROM units u JOIN down d ON u.parent = d.id)"
		" SELECT u.token, u.name_zh, u.name_en,"
		"  EXISTS (SELECT 1 FROM code_uses cu WHERE cu.hash = ?1 AND cu.unit = u.id)"
		" FROM down JOIN units u ON u.id = down.id"
		" JOIN round_units ru ON ru.unit = u.id AND ru.round = ?2 ORDER BY u.position",
		"bt", t->code_hash, sizeof t->code_hash, t->round);
}

static void count_progress(col_target *t, char *next_token)
{
	sqlite3_stmt *st = scope_units(t);
	t->done = t->total = 0;
	if (next_token)
		next_token[0] = '\0';
	while (db_step(st) == SQLITE_ROW) {
		t->total++;
		if (sqlite3_column_int(st, 3))
			t->done++;
		else if (next_token && !next_token[0])
			str_copy(next_token, COL_TOKEN_LEN + 1, db_col_text(st, 0));
	}
	db_finalize(st);
}

/* Fill t from a code in a URL: true when the code exists, its round is
 * open and it still has a unit to rate. */
static bool find_code(const char *raw, col_target *t)
{
	memset(t, 0, sizeof *t);
	char code[CODE_LEN + 1];
	if (!code_normalise(raw, code))
		return false;
	t->by_code = true;
	str_copy(t->code, sizeof t->code, code);
	code_hash(secret, code, t->code_hash);
	sqlite3_stmt *st = db_prepare(col_db(), "SELECT c.round, c.grp, r.title_zh, r.title_en, "
		"coalesce(r.closes_at, 0) FROM codes c JOIN rounds r ON r.id = c.round "
		"WHERE c.hash = ? AND r.state = 'open'", "b", t->code_hash, sizeof t->code_hash);
	bool found = db_step(st) == SQLITE_ROW;
	if (found) {
		str_copy(t->round, sizeof t->round, db_col_text(st, 0));
		str_copy(t->grp, sizeof t->grp, db_col_text(st, 1));
		str_copy(t->round_title[FORM_ZH], sizeof t->round_title[0], db_col_text(st, 2));
		str_copy(t->round_title[FORM_EN], sizeof t->round_title[1], db_col_text(st, 3));
		t->closes_at = sqlite3_column_int64(st, 4);
	}
	db_finalize(st);
	if (!found)
		return false;
	count_progress(t, NULL);
	return t->done < t->total;
}

/* Narrow t to one unit of the code's scope that it has not rated yet. */
static bool find_unit_of_code(const char *token, col_target *t)
{
	col_target u;
	col_find_unit(token, &u);
	if (!u.form || strcmp(u.round, t->round) != 0)
		return false;
	sqlite3_stmt *st = scope_units(t);
	bool in_scope = false;
	while (!in_scope && db_step(st) == SQLITE_ROW)
		in_scope = strcmp(db_col_text(st, 0), token) == 0 && !sqlite3_column_int(st, 3);
	db_finalize(st);
	if (!in_scope)
		return false;
	str_copy(t->unit, sizeof t->unit, u.unit);
	str_copy(t->token, sizeof t->token, u.token);
	memcpy(t->name, u.name, sizeof t->name);
	t->unit_found = t->has_round = true;
	str_copy(t->state, sizeof t->state, "open");
	t->code_round = u.code_round;
	t->form = u.form;
	return true;
}

void col_code_next_url(const col_target *t, enum form_lang lang, char *out, size_t size)
{
	col_target now = *t;
	char next[COL_TOKEN_LEN + 1];
	count_progress(&now, next);
	const char *l = lang == FORM_EN ? "en" : "zh";
	if (next[0])
		fmt_into(out, size, "/c/%U/%U?lang=%s", t->code, next, l);
	else
		fmt_into(out, size, "/c/done?lang=%s", l);
}

static enum MHD_Result entry_page(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const char *value, const char *problem)
{
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	col_page_open(&page, lang, ZH_EN(lang, "输入测评码", "Enter your ballot code"),
		ZH_EN(lang, "输入测评码", "Enter your ballot code"), NULL, lang == FORM_EN ? "/c?lang=zh" : "/c?lang=en");
	if (problem)
		buf_fmt(&page, "<p class=\"error-summary\" role=\"alert\">%h</p>", problem);
	buf_fmt(&page, "<form method=\"post\" action=\"/c?lang=%s\" accept-charset=\"utf-8\" class=\"code-entry\">"
		"<label for=\"code\">%s</label><input type=\"text\" id=\"code\" name=\"code\" value=\"%h\" "
		"maxlength=\"40\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" "
		"placeholder=\"XXXXX-XXXXX-XXXXX\" required><button type=\"submit\">%s</button></form>",
		lang == FORM_EN ? "en" : "zh",
		ZH_EN(lang, "测评码（15 位字母和数字，见测评码纸条）", "Ballot code (15 letters and digits, on your slip)"),
		value ? value : "", ZH_EN(lang, "开始评价", "Start"));
	col_page_close(&page, lang);
	return col_send_page(c, status, &page, NULL);
}

static enum MHD_Result take_typed_code(struct MHD_Connection *c, col_request *rq)
{
	enum form_lang lang = rq->lang;
	kv_list fields;
	enum kv_error ke = kv_parse(buf_str(&rq->body), rq->body.len, 4, &fields);
	const char *typed = ke == KV_OK ? kv_get(&fields, "code") : NULL;
	char code[CODE_LEN + 1];
	enum MHD_Result r;
	if (rq->too_large || !typed)
		r = entry_page(c, 400, lang, NULL, ZH_EN(lang, "请输入测评码。", "Please type your code."));
	else if (!code_normalise(typed, code))
		r = entry_page(c, 422, lang, typed, ZH_EN(lang, "测评码应为 15 位字母和数字，请核对后重新输入。",
			"A code has 15 letters and digits. Please check it and type it again."));
	else {
		char to[96];
		fmt_into(to, sizeof to, "/c/%U?lang=%s", code, lang == FORM_EN ? "en" : "zh");
		r = http_send(c, 303, "text/plain; charset=utf-8", "", 0, HTTP_NO_STORE,
			(const char *const[]){ "Location", to, NULL });
	}
	kv_free(&fields);
	return r;
}

static enum MHD_Result list_page(struct MHD_Connection *c, enum form_lang lang, const col_target *t)
{
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	char other[96];
	fmt_into(other, sizeof other, "/c/%U?lang=%s", t->code, lang == FORM_EN ? "zh" : "en");
	col_page_open(&page, lang, t->round_title[lang], ZH_EN(lang, "请评价以下单位", "Please rate these units"),
		t->round_title[lang], other);
	buf_fmt(&page, ZH_EN(lang, "<p class=\"progress\">已完成 %d 个，共 %d 个。每个单位只能评价一次。</p>",
		"<p class=\"progress\">%d of %d done. Each unit can be rated once.</p>"), t->done, t->total);
	buf_puts(&page, "<ol class=\"units\">");
	sqlite3_stmt *st = scope_units(t);
	while (db_step(st) == SQLITE_ROW) {
		const char *name = db_col_text(st, lang == FORM_EN ? 2 : 1);
		if (sqlite3_column_int(st, 3))
			buf_fmt(&page, "<li class=\"done\">%h <span>%s</span></li>", name, ZH_EN(lang, "已评价", "done"));
		else
			buf_fmt(&page, "<li><a href=\"/c/%U/%U?lang=%s\">%h</a></li>", t->code, db_col_text(st, 0),
				lang == FORM_EN ? "en" : "zh", name);
	}
	db_finalize(st);
	buf_puts(&page, "</ol>");
	char next[96];
	col_code_next_url(t, lang, next, sizeof next);
	buf_fmt(&page, "<p><a class=\"button\" href=\"%h\">%s</a></p>", next,
		t->done ? ZH_EN(lang, "继续评价", "Continue") : ZH_EN(lang, "开始评价", "Start"));
	col_page_close(&page, lang);
	return col_send_page(c, 200, &page, NULL);
}

static enum MHD_Result done_page(struct MHD_Connection *c, enum form_lang lang)
{
	return col_message(c, 200, lang, ZH_EN(lang, "感谢您的评价！", "Thank you!"),
		ZH_EN(lang, "您已完成这个测评码的全部评价，评价已保存。测评结果将在本轮测评结束后由组织部门汇总公布。"
			"评价是匿名的：系统不记录您的身份，测评码与您的评价之间也没有任何关联。",
			"You have rated every unit this code covers, and your ballots are saved. The organising "
			"office will publish the results after the appraisal closes. Your ballots are anonymous: "
			"nothing links them to you, nor to your code."));
}

enum MHD_Result col_code_route(struct MHD_Connection *c, col_request *rq, const char *rest)
{
	enum form_lang lang = rq->lang;
	bool read = rq->method == M_GET || rq->method == M_HEAD;
	if (rest[0] == '\0') {
		if (rq->method == M_POST)
			return take_typed_code(c, rq);
		return read ? entry_page(c, 200, lang, NULL, NULL) : col_not_allowed(c, lang, "GET, HEAD, POST");
	}
	if (rest[0] != '/')
		return col_message(c, 404, lang, ZH_EN(lang, "页面不存在", "Page not found"),
			ZH_EN(lang, "请检查地址。", "Check the address."));
	rest++;
	if (strcmp(rest, "done") == 0)
		return read ? done_page(c, lang) : col_not_allowed(c, lang, "GET, HEAD");
	char raw[CODE_INPUT_MAX + 1];
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (rq->method == M_OTHER || (!slash && rq->method == M_POST))
		return col_not_allowed(c, lang, slash ? "GET, HEAD, POST" : "GET, HEAD");
	if (col_limit_empty(c, COL_LIMIT_CODE_FAILURES))
		return col_limited(c, lang, COL_LIMIT_CODE_FAILURES);
	col_target t;
	str_copy(raw, n + 1 < sizeof raw ? n + 1 : sizeof raw, rest);
	if (n > CODE_INPUT_MAX || !find_code(raw, &t))
		return col_code_refused(c, lang);
	if (!slash)
		return list_page(c, lang, &t);
	if (!find_unit_of_code(slash + 1, &t))
		return col_code_refused(c, lang);
	if (rq->method == M_POST)
		return col_take_ballot(c, rq, &t);
	return col_form_page(c, 200, lang, &t, NULL, NULL, NULL);
}
