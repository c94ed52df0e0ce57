/* col.h - the collector's parts, shared between its files.
 *
 * pingyi-collector is the public daemon: it serves the rating form, takes
 * ballots and stores them durably and anonymously. It links no libcurl and
 * has no admin code path. Its files:
 *   main.c     options, start-up, signals, orderly shutdown
 *   routes.c   the request handler: request state and routing
 *   ballot.c   a unit's form and ballots, for poster (/u) and code (/c) flows
 *   codes.c    the ballot-code (测评码) pages: entry, list, walking through units
 *   guard.c    abuse resistance: per-address limits, form tokens, vote cookies
 *   pages.c    the HTML around forms and the message pages, in zh and en
 *   writer.c   the one writer thread that commits ballots in batches
 *   intake.c   ballots' way from arrival order into the shuffled store
 *   checkpoint.c  WAL checkpoints on their own thread
 *   assets.S   the static files (static/), built into the binary
 * The questionnaire itself (parse, validate, render) is in forms/; code
 * normalising and hashing in common/codes.c. */
#ifndef PINGYI_COL_H
#define PINGYI_COL_H

#include <microhttpd.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/codes.h"
#include "forms/form.h"

enum {
	COL_BODY_MAX = 16 * 1024,   /* POST bodies above this get 413 */
	COL_TOKEN_LEN = 8,          /* a unit's public token */
	COL_PAGE_MAX = 256 * 1024,
};

#define ZH_EN(lang, zh, en) ((lang) == FORM_EN ? (en) : (zh))

/* What a request is about: a unit, its round and, in the code flow, the
 * ballot code. Filled by col_find_unit / col_find_code. */
typedef struct col_target {
	bool unit_found, has_round;
	char unit[128];
	char token[COL_TOKEN_LEN + 1];
	char name[2][512];
	char round[72];
	char state[16];             /* open | closed */
	bool code_round;            /* the round takes only ballots with codes */
	char round_title[2][512];
	int64_t closes_at;
	char vote_cookie[32];       /* its vote cookie's value, made with the lookup */
	const form *form;           /* owned by the form cache; NULL unless open */
	bool by_code;               /* code flow: the fields below are set */
	char code[CODE_LEN + 1];
	unsigned char code_hash[CODE_HASH];
	char grp[64];
	int done, total;            /* units rated / to rate with this code */
} col_target;

enum col_method { M_GET, M_HEAD, M_POST, M_OTHER };

typedef struct col_job col_job;

/* One request's state, kept across libmicrohttpd's calls of the handler. */
typedef struct col_request {
	enum col_method method;
	enum form_lang lang;
	buf body;
	bool too_large;
	col_job *job;               /* set once a ballot is queued */
	bool answered;              /* the writer's in-flight count knows it is done */
	col_target target;          /* the target of a queued ballot */
	char nonce_key[32];         /* the form token spent by the queued ballot */
} col_request;

/* ---- writer.c ---- */

enum col_result { COL_PENDING, COL_STORED, COL_ROUND_CLOSED, COL_CODE_SPENT, COL_FAILED };

/* One ballot waiting for its batch to commit. The handler fills it, queues
 * it and suspends the connection; the writer sets result and hands it to
 * the loop thread, which resumes the connection. */
struct col_job {
	struct col_job *next;
	struct MHD_Connection *conn;
	char round[72];
	char unit[128];
	char grp[64];
	bool by_code;                 /* spend code_hash for unit, or fail */
	unsigned char code_hash[CODE_HASH];
	size_t n_answers;
	char question[FORM_MAX_QUESTIONS][FORM_NAME_MAX];
	char level[FORM_MAX_QUESTIONS][FORM_NAME_MAX];
	char *answers_json;           /* owned */
	char *comment;                /* owned, may be NULL */
	bool complaint;
	enum col_result result;       /* written by the writer before the hand-over */
};

/* Jobs in the order they came, linked by next (NULL after the tail): the
 * writer's queue, and the batches waiting for the loop thread. Each user
 * holds its own lock, for O(1). */
typedef struct col_jobs {
	col_job *head, *tail;
} col_jobs;

static inline void col_jobs_append(col_jobs *q, col_jobs more)
{
	if (!more.head)
		return;
	if (q->tail)
		q->tail->next = more.head;
	else
		q->head = more.head;
	q->tail = more.tail;
}

/* Take them all, in order, leaving q empty. */
static inline col_jobs col_jobs_take(col_jobs *q)
{
	col_jobs all = *q;
	q->head = q->tail = NULL;
	return all;
}

/* Start the writer on its own connection to path. Returns 0 or -1 with err. */
int col_writer_start(const char *path, char *err, size_t errsize);
/* A ballot's way through the writer, from the handler's side:
 *   col_writer_admit()   reserve a place; false once shutdown has begun
 *   (suspend the connection)
 *   col_writer_submit()  queue it; the connection is resumed once the
 *                        batch is committed (or failed)
 *   col_writer_answered()   the handler has answered it
 * Shutdown (col_writer_drain) waits until every admitted ballot is answered,
 * so no ballot is stored without its rater hearing so (should it give up,
 * the queued ones are not stored at all). */
bool col_writer_admit(void);
void col_writer_submit(col_job *job);
void col_writer_answered(void);
/* Refuse new ballots and wait (up to timeout_ms) until every admitted one is
 * answered. Returns true when none is left; false when it gave up, and then
 * the writer takes no further batch: the queued ballots stay unwritten. */
bool col_writer_drain(int timeout_ms);
/* Stop the thread once the batch it is writing is done; ballots still
 * queued are left unwritten. */
void col_writer_stop(void);
void col_job_free(col_job *job);

/* ---- intake.c ---- */

/* The writer's side of ballot_intake; writer thread only. Set up on the
 * writer's connection: picks up what a stop left in the intake. */
int intake_open(sqlite3 *writer, char *err, size_t errsize);
/* Insert a ballot (random key) in the writer's open transaction. */
bool intake_add(const char *round, const char *unit, const char *grp, const char *answers);
/* That transaction committed (true) or was rolled back. */
void intake_end(bool committed);
/* Move up to rows intake ballots on, outside any transaction: each
 * statement commits on its own. idle: do not wait for more to arrive.
 * False (logged) if a statement failed: that one left nothing behind, and
 * what those before it did stands. */
bool intake_step(size_t rows, bool idle);
/* Is there anything in the intake? */
bool intake_busy(void);
/* Is a slice due to move or be deleted now (under load: not idle)? */
bool intake_due(void);
void intake_close(void);

/* ---- checkpoint.c ---- */

/* Take WAL checkpoints off the writer's connection and run them on a
 * thread of their own (its own connection to path). Returns 0 or -1 with err. */
int col_checkpoints_start(const char *path, sqlite3 *writer, char *err, size_t errsize);
/* The writer calls this between transactions: it waits there while a
 * checkpoint needs the WAL to itself. */
void col_checkpoint_pause_point(void);
/* Stop the thread; call once the writer has stopped. */
void col_checkpoints_stop(void);

/* ---- loop.c ---- */

/* The thread that runs libmicrohttpd's event loop; while it runs, no other
 * thread drives the daemon. Started once the daemon is (with its
 * MHD_OPTION_CONNECTION_LIMIT), handed each committed batch, told to stop
 * accepting when shutdown begins, stopped (and joined) before
 * MHD_stop_daemon. */
int col_loop_start(struct MHD_Daemon *d, unsigned connection_limit);
/* Hand a committed batch to the loop thread, which resumes its connections
 * before its next MHD_run; they answer and free their jobs, so the caller
 * must not touch them after this. */
void col_loop_answer(col_jobs batch);
void col_loop_quiesce(void);
void col_loop_stop(void);

/* ---- routes.c ---- */

/* The libmicrohttpd access handler and completion callback; cls is unused. */
enum MHD_Result col_handle(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls);
void col_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
	enum MHD_RequestTerminationCode toe);
/* Open the handler's read connection and load the server secret.
 * trust_proxy: see col_guard_init. */
int col_routes_init(const char *path, bool trust_proxy, char *err, size_t errsize);
void col_routes_free(void);
/* The handler thread's database connection. */
sqlite3 *col_db(void);

/* ---- ballot.c ---- */

/* Fill t for a unit token: the unit and its open round (else its latest). */
void col_find_unit(const char *token, col_target *t);
/* A unit's form page; notice (escaped HTML) is shown above the form. */
enum MHD_Result col_form_page(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const col_target *t, const kv_list *values, const form_error *why, const char *notice);
/* Check a POSTed ballot for t and queue it (suspending c), or answer. */
enum MHD_Result col_take_ballot(struct MHD_Connection *c, col_request *rq, const col_target *t);
/* Answer a queued ballot once its connection is resumed. */
enum MHD_Result col_answer_ballot(struct MHD_Connection *c, col_request *rq);
/* The /u/... routes. rest is the URL after "/u/". */
enum MHD_Result col_unit_route(struct MHD_Connection *c, col_request *rq, const char *rest);
/* Why a unit's form cannot be shown (no unit, no round, closed). */
enum MHD_Result col_unit_unavailable(struct MHD_Connection *c, enum form_lang lang, const col_target *t);
void col_forms_free(void);

/* ---- codes.c ---- */

/* Keep the server secret to hash codes with. */
void col_codes_init(const unsigned char *server_secret);
/* The /c... routes. rest is the URL after "/c" ("" or "/..."). */
enum MHD_Result col_code_route(struct MHD_Connection *c, col_request *rq, const char *rest);
/* Where to send a rater after a code ballot: the next unit, or done. */
void col_code_next_url(const col_target *t, enum form_lang lang, char *out, size_t size);
/* The one answer for an invalid, used-up or out-of-scope code. */
enum MHD_Result col_code_refused(struct MHD_Connection *c, enum form_lang lang);

/* ---- guard.c ---- */

enum col_limit { COL_LIMIT_CODE_FAILURES, COL_LIMIT_OPEN_BALLOTS };

/* Set up the keys (from the server secret) and the tables; trust_proxy
 * takes the client address from X-Real-IP / X-Forwarded-For when the peer
 * is on loopback (nginx on the same machine). */
void col_guard_init(const unsigned char *secret, bool trust_proxy, bool secure_cookies);
/* Change a limit from "BURST,PER_SECOND" (e.g. "3000,20"). False when the
 * text is not that. Call before serving. */
bool col_limit_set(enum col_limit which, const char *spec);
/* Take one unit from the address's bucket for this limit. False when the
 * bucket is empty (answer 429). Addresses are kept only as keyed hashes. */
bool col_limit_take(struct MHD_Connection *c, enum col_limit which);
/* True when the address's bucket for this limit is empty (without taking). */
bool col_limit_empty(struct MHD_Connection *c, enum col_limit which);
/* The 429 page for a limit. */
enum MHD_Result col_limited(struct MHD_Connection *c, enum form_lang lang, enum col_limit which);

/* A new form token for a page of t (base64url, NUL-terminated). */
void col_token_make(const col_target *t, char *out, size_t size);
enum col_token_check { TOKEN_OK, TOKEN_BAD, TOKEN_EXPIRED, TOKEN_REPLAYED };
/* Check a submitted token against t; on TOKEN_OK, key (32 bytes) names it
 * for col_token_spend / col_token_unspend. */
enum col_token_check col_token_check(const col_target *t, const char *token, char *key);
void col_token_spend(const char *key);
void col_token_unspend(const char *key);

/* The vote cookie of an open round: set after a stored ballot, checked
 * before taking another from the same browser. Its value is a MAC of the
 * round and the unit, the same for every browser: it is made once, when the
 * unit is looked up, into t->vote_cookie. */
void col_cookie_value(col_target *t);
bool col_cookie_voted(struct MHD_Connection *c, const col_target *t);
/* A Set-Cookie value for t; out[size]. */
void col_cookie_make(const col_target *t, char *out, size_t size);

/* ---- pages.c ---- */

/* Page head up to and including <main>; title and heading are escaped. */
void col_page_open(buf *out, enum form_lang lang, const char *title, const char *heading,
	const char *subheading, const char *lang_switch_url);
void col_page_close(buf *out, enum form_lang lang);
/* A whole page with a heading and one paragraph of (already escaped) HTML. */
void col_page_message(buf *out, enum form_lang lang, const char *heading, const char *html);
/* Send a page (and free it). headers as for http_send. */
enum MHD_Result col_send_page(struct MHD_Connection *c, unsigned status, buf *page,
	const char *const *headers);
/* Send a message page. */
enum MHD_Result col_message(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const char *heading, const char *html);
/* 405 with Allow. */
enum MHD_Result col_not_allowed(struct MHD_Connection *c, enum form_lang lang, const char *allow);

#endif
