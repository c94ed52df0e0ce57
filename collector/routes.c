/* routes.c - the collector's request handler: request state and routing.
 *
 *   /u/<token>...      a unit's form, poster flow (ballot.c)
 *   /c...              ballot codes (codes.c)
 *   /static/form.css   the stylesheet
 *   /healthz           "ok" when the database answers
 *
 * libmicrohttpd calls the handler several times per request. The first call
 * only sets up state: answering on the first call makes it close keep-alive
 * connections (DESIGN.md §5) -- except for a declared oversized body, which
 * is refused before it is read. POST bodies are gathered up to
 * COL_BODY_MAX. A queued ballot suspends the connection; once its batch is
 * committed and the connection resumed, the handler runs once more and
 * answers. Nothing here logs a request: no address, code or ballot. */
#include "col.h"

#include <string.h>

#include "common/codes.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/http.h"
#include "common/mem.h"
#include "common/schema.h"
#include "common/str.h"

extern const char col_css[], col_css_end[];

static sqlite3 *rdb;

sqlite3 *col_db(void) { return rdb; }

int col_routes_init(const char *path, bool trust_proxy, char *err, size_t errsize)
{
	rdb = schema_open(path, DB_READWRITE, err, errsize);
	if (!rdb)
		return -1;
	unsigned char secret[CODE_SECRET];
	char *hex = db_text(rdb, "SELECT value FROM meta WHERE key = 'secret'", NULL);
	char *base = db_text(rdb, "SELECT value FROM meta WHERE key = 'base_url'", NULL);
	bool ok = hex && code_secret_from_hex(hex, secret);
	bool https = base && str_starts(base, "https://");
	free(hex);
	free(base);
	if (!ok) {
		fmt_into(err, errsize, "%s has no server secret: run pingyi init --db %s", path, path);
		return -1;
	}
	col_codes_init(secret);
	col_guard_init(secret, trust_proxy, https);
	return 0;
}

void col_routes_free(void)
{
	col_forms_free();
	db_close(rdb);
}

static enum MHD_Result route(struct MHD_Connection *c, col_request *rq, const char *url)
{
	enum form_lang lang = rq->lang;
	if (str_starts(url, "/u/"))
		return col_unit_route(c, rq, url + 3);
	if (str_starts(url, "/c") && (url[2] == '\0' || url[2] == '/'))
		return col_code_route(c, rq, url + 2);
	bool read = rq->method == M_GET || rq->method == M_HEAD;
	if (strcmp(url, "/static/form.css") == 0)
		return read ? http_send(c, 200, "text/css; charset=utf-8", col_css,
			(size_t)(col_css_end - col_css), HTTP_IMMUTABLE, NULL)
			: col_not_allowed(c, lang, "GET, HEAD");
	if (strcmp(url, "/healthz") == 0) {
		if (!read)
			return col_not_allowed(c, lang, "GET, HEAD");
		bool ok = db_int(rdb, 0, "SELECT count(*) FROM meta", NULL) > 0;
		const char *body = ok ? "ok\n" : "database unavailable\n";
		return http_send(c, ok ? 200 : 503, "text/plain; charset=utf-8", body, strlen(body),
			HTTP_NO_STORE, NULL);
	}
	if (strcmp(url, "/") == 0)
		return read ? col_message(c, 200, lang, ZH_EN(lang, "群众满意度测评", "Satisfaction appraisal"),
			ZH_EN(lang, "请扫描单位张贴的二维码参加测评；会议测评请<a href=\"/c?lang=zh\">输入测评码</a>。",
				"Scan the QR code posted at a unit to take part; at a meeting, "
				"<a href=\"/c?lang=en\">type your ballot code</a>."))
			: col_not_allowed(c, lang, "GET, HEAD");
	return col_message(c, 404, lang, ZH_EN(lang, "页面不存在", "Page not found"),
		ZH_EN(lang, "请检查地址，或重新扫描二维码。", "Check the address, or scan the QR code again."));
}

static enum col_method method_of(const char *m)
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
	col_request *rq = *req_cls;
	if (!rq) {
		rq = xcalloc(1, sizeof *rq);
		rq->method = method_of(method);
		rq->lang = http_wants_english(c) ? FORM_EN : FORM_ZH;
		buf_init(&rq->body, COL_BODY_MAX);
		*req_cls = rq;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		int64_t len;
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
		return col_answer_ballot(c, rq);
	return route(c, rq, url);
}

void col_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
	enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	col_request *rq = *req_cls;
	if (!rq)
		return;
	buf_free(&rq->body);
	/* A rater who hung up while their ballot was being committed: the
	 * ballot is stored, but nobody will be answered, so count it out here
	 * or a shutdown would wait for it. (MHD ends a request only once its
	 * suspended connection was resumed, after the writer is done with it.) */
	if (rq->job && !rq->answered)
		col_writer_answered();
	if (rq->job)
		col_job_free(rq->job);
	free(rq);
	*req_cls = NULL;
}
