/* col.h - the collector's parts, shared between its files.
 *
 * pingyi-collector is the public daemon: it serves the rating form, takes
 * ballots and stores them durably and anonymously. It links no libcurl and
 * has no admin code path. Its files:
 *   main.c     options, start-up, signals, orderly shutdown
 *   routes.c   the request handler: routing, input checks, answers
 *   pages.c    the HTML around forms and the message pages, in zh and en
 *   writer.c   the one writer thread that commits ballots in batches
 *   assets.S   the static files (static/), built into the binary
 * The questionnaire itself (parse, validate, render) is in forms/. */
#ifndef PINGYI_COL_H
#define PINGYI_COL_H

#include <microhttpd.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "common/buf.h"
#include "forms/form.h"

enum { COL_BODY_MAX = 16 * 1024 };  /* POST bodies above this get 413 */

/* ---- writer.c ---- */

enum col_result { COL_PENDING, COL_STORED, COL_ROUND_CLOSED, COL_FAILED };

/* One ballot waiting for its batch to commit. The handler fills it, queues
 * it and suspends the connection; the writer sets result and resumes it. */
typedef struct col_job {
	struct col_job *next;
	struct MHD_Connection *conn;
	char round[72];
	char unit[128];
	char grp[64];
	size_t n_answers;
	char question[FORM_MAX_QUESTIONS][FORM_NAME_MAX];
	char level[FORM_MAX_QUESTIONS][FORM_NAME_MAX];
	char *answers_json;           /* owned */
	char *comment;                /* owned, may be NULL */
	bool complaint;
	enum col_result result;       /* written by the writer before resuming */
} col_job;

/* Start the writer on its own connection to path. Returns 0 or -1 with err. */
int col_writer_start(const char *path, char *err, size_t errsize);
/* Queue a job; the writer resumes job->conn once it is committed or failed. */
void col_writer_submit(col_job *job);
/* Commit what is queued, then stop the thread. */
void col_writer_stop(void);
/* True while no job is queued or being committed. */
bool col_writer_idle(void);
void col_job_free(col_job *job);

/* ---- pages.c ---- */

/* Page head up to and including <main>; title and heading are escaped. */
void col_page_open(buf *out, enum form_lang lang, const char *title, const char *heading,
	const char *subheading, const char *lang_switch_url);
void col_page_close(buf *out, enum form_lang lang);
/* A whole page with a heading and one paragraph of (already escaped) HTML. */
void col_page_message(buf *out, enum form_lang lang, const char *heading, const char *html);

/* ---- routes.c ---- */

/* The libmicrohttpd access handler and completion callback; cls is unused. */
enum MHD_Result col_handle(void *cls, struct MHD_Connection *conn, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **req_cls);
void col_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
	enum MHD_RequestTerminationCode toe);
/* Open the handler's read connection. Returns 0 or -1 with err. */
int col_routes_init(const char *path, char *err, size_t errsize);
void col_routes_free(void);

#endif
