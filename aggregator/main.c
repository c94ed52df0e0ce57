/* main.c - pingyi-aggregator: the internal daemon.
 *
 * For now it serves a read-only tally page of the open rounds (the
 * dashboard proper comes later) and closes rounds whose closing time has
 * passed, recording their final tally in the ledger (round.c). It listens on
 * an internal address only. Tallies, rules and the ledger are in this
 * folder's library (agg.h). */
#include "agg.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/http.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/rnd.h"
#include "common/schema.h"
#include "common/str.h"

static const char usage[] =
	"usage: pingyi-aggregator [--db PATH] [--listen HOST:PORT] [--tick SECONDS]\n"
	"\n"
	"The internal daemon: tally pages for the office, and closing rounds on time.\n"
	"\n"
	"  --db PATH            the database (default var/pingyi.db)\n"
	"  --listen HOST:PORT   internal address (default 127.0.0.1:8081; port 0 picks one)\n"
	"  --tick SECONDS       how often to look for rounds to close (default 30)\n"
	"  --help               this text\n";

static const char style[] =
	"body{font:15px/1.5 sans-serif;margin:1.5rem;color:#222}h1{font-size:1.4rem}"
	"table{border-collapse:collapse;margin:.5rem 0 2rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}"
	"th[scope=row]{text-align:left;font-weight:400}.depth1 th[scope=row]{padding-left:1.6rem}"
	".depth2 th[scope=row]{padding-left:2.8rem}.depth3 th[scope=row],.depth4 th[scope=row]{padding-left:4rem}"
	".met{color:#1b5e20}.below{color:#b71c1c;font-weight:700}.hidden{color:#999}.meta{color:#555}";

static sqlite3 *web_db;   /* used by the HTTP thread only */
static const char *db_path;
static int tick = 30;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond;
static bool stopping;

static enum MHD_Result tally_page(struct MHD_Connection *c)
{
	enum form_lang lang = http_wants_english(c) ? FORM_EN : FORM_ZH;
	bool en = lang == FORM_EN;
	buf page;
	buf_init(&page, 64 << 20);
	buf_fmt(&page, "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>%s</title>"
		"<link rel=\"stylesheet\" href=\"/style.css\"></head><body><h1>%s</h1>"
		"<p><a href=\"?lang=%s\">%s</a></p>", en ? "en" : "zh-CN",
		en ? "pingyi: open rounds" : "评议：进行中的测评", en ? "Open rounds" : "进行中的测评",
		en ? "zh" : "en", en ? "中文" : "English");
	sqlite3_stmt *st = db_prepare(web_db, "SELECT id FROM rounds WHERE state = 'open' ORDER BY opened_at", NULL);
	int n = 0;
	while (db_step(st) == SQLITE_ROW) {
		agg_tally t;
		char err[512];
		if (agg_tally_load(web_db, db_col_text(st, 0), &t, err, sizeof err) == 0) {
			agg_tally_html(&t, lang, &page);
			agg_tally_free(&t);
			n++;
		} else {
			log_error("tally of round %s: %s", db_col_text(st, 0), err);
		}
	}
	db_finalize(st);
	if (n == 0)
		buf_puts(&page, en ? "<p>No round is open.</p>" : "<p>目前没有进行中的测评。</p>");
	buf_puts(&page, "</body></html>\n");
	enum MHD_Result r = http_send(c, 200, "text/html; charset=utf-8", buf_str(&page), page.len,
		HTTP_NO_STORE, NULL);
	buf_free(&page);
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls)
{
	(void)cls; (void)version; (void)upload_data;
	static int first_call_marker;
	if (!*req_cls) {  /* answer from the second call: keeps connections alive */
		*req_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "只读页面，仅支持 GET。\nOnly GET is supported: this is a read-only view.\n";
		return http_send(c, 405, "text/plain; charset=utf-8", msg, sizeof msg - 1, HTTP_NO_STORE,
			(const char *const[]){ "Allow", "GET, HEAD", NULL });
	}
	if (strcmp(url, "/") == 0)
		return tally_page(c);
	if (strcmp(url, "/style.css") == 0)
		return http_send(c, 200, "text/css", style, sizeof style - 1, HTTP_IMMUTABLE, NULL);
	if (strcmp(url, "/healthz") == 0)
		return http_send(c, 200, "text/plain; charset=utf-8", "ok\n", 3, HTTP_NO_STORE, NULL);
	static const char missing[] = "页面不存在，统计页面在 / 。\nNot found. The tally page is at /\n";
	return http_send(c, 404, "text/plain; charset=utf-8", missing, sizeof missing - 1,
		HTTP_NO_STORE, NULL);
}

/* Close due rounds every tick until told to stop. */
static void *scheduler(void *arg)
{
	(void)arg;
	char err[512];
	sqlite3 *db = schema_open(db_path, DB_READWRITE, err, sizeof err);
	if (!db) {
		log_error("scheduler: %s", err);
		return NULL;
	}
	pthread_mutex_lock(&stop_lock);
	while (!stopping) {
		pthread_mutex_unlock(&stop_lock);
		err[0] = '\0';
		int closed = agg_close_due(db, (int64_t)time(NULL), err, sizeof err);
		if (closed > 0)
			log_info("closed %d round%s whose time was up; tallies are in the ledger",
				closed, closed == 1 ? "" : "s");
		if (err[0])
			log_error("%s", err);
		int tickets = agg_complaints_sync(db, (int64_t)time(NULL), "pingyi-aggregator", NULL, err, sizeof err);
		if (tickets < 0)
			log_error("complaints: %s", err);
		else if (tickets > 0)
			log_info("made %d complaint ticket%s (pingyi complaints list)", tickets, tickets == 1 ? "" : "s");
		pthread_mutex_lock(&stop_lock);
		struct timespec until = clock_deadline((int64_t)tick * 1000);
		while (!stopping && pthread_cond_timedwait(&stop_cond, &stop_lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&stop_lock);
	db_close(db);
	return NULL;
}

static void fail(const char *what)
{
	fprintf(stderr, "pingyi-aggregator: %s\n", what);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:8081";
	db_path = "var/pingyi.db";
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "tick", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'd': db_path = optarg; break;
		case 'l': listen = optarg; break;
		case 't':
			if (!str_to_int(optarg, 1, 86400, &tick))
				fail("--tick takes a number of seconds from 1 to 86400");
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	log_init("pingyi-aggregator");
	char err[512];
	struct sockaddr_in addr;
	if (http_parse_listen(listen, &addr, err, sizeof err) != 0)
		fail(err);
	if (rnd_init() != 0)
		fail("libsodium could not be initialised");
	http_block_stop_signals();
	if (!(web_db = schema_open(db_path, DB_READWRITE, err, sizeof err)))
		fail(err);
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
		0, NULL, NULL, handle, NULL,
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_END);
	if (!d) {
		fmt_into(err, sizeof err, "cannot listen on %s (in use, or not an address of this machine?)", listen);
		fail(err);
	}
	pthread_t sched;
	clock_cond_init(&stop_cond);
	pthread_create(&sched, NULL, scheduler, NULL);
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
	log_info("listening on http://%s:%u (database %s)", host, http_bound_port(d), db_path);

	log_info("got %s, shutting down", http_wait_for_stop());
	pthread_mutex_lock(&stop_lock);
	stopping = true;
	pthread_cond_signal(&stop_cond);
	pthread_mutex_unlock(&stop_lock);
	pthread_join(sched, NULL);
	MHD_stop_daemon(d);
	db_close(web_db);
	log_info("stopped");
	return 0;
}
