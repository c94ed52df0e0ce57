/* http.h - what both daemons' HTTP answers have in common (libmicrohttpd).
 *
 * Every response carries the same security headers; HTML is never cached
 * (WeChat's browser caches aggressively); the page language is chosen the
 * same way everywhere. Routing and pages belong to each daemon. */
#ifndef PINGYI_HTTP_H
#define PINGYI_HTTP_H

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

enum http_cache {
	HTTP_NO_STORE,     /* pages: Cache-Control: no-store */
	HTTP_IMMUTABLE,    /* static assets: cached for a day */
};

/* Queue a response (body copied) with the security headers. headers, when
 * not NULL, adds more: name, value, name, value, ..., NULL (e.g. Allow,
 * Location, Set-Cookie). */
enum MHD_Result http_send(struct MHD_Connection *c, unsigned status, const char *content_type,
	const char *body, size_t len, enum http_cache cache, const char *const *headers);

/* The same, handing body (from malloc) over to libmicrohttpd, which frees it
 * once sent: no copy of the page per request. */
enum MHD_Result http_send_owned(struct MHD_Connection *c, unsigned status, const char *content_type,
	char *body, size_t len, enum http_cache cache, const char *const *headers);

/* The same response, built but not queued, for a caller that queues it
 * many times (MHD_queue_response each time; MHD_destroy_response when done
 * with it: libmicrohttpd counts its users). NULL if out of memory. */
struct MHD_Response *http_response(const char *content_type, const char *body, size_t len,
	enum http_cache cache, const char *const *headers);
/* Queue r and let go of it (libmicrohttpd holds it until it is sent).
 * r NULL (out of memory): MHD_NO. */
enum MHD_Result http_queue_once(struct MHD_Connection *c, unsigned status, struct MHD_Response *r);

/* True when the request asks for English: ?lang=en, or else an
 * Accept-Language whose preferred Chinese-or-English tag is English.
 * Chinese is the default. */
bool http_wants_english(struct MHD_Connection *c);

/* Parse "HOST:PORT" (an IPv4 address; port 0 picks a free one) into out.
 * Returns 0, or -1 with err. */
int http_parse_listen(const char *spec, struct sockaddr_in *out, char *err, size_t errsize);

/* Block SIGTERM and SIGINT in this thread and every thread started after
 * (so only http_wait_for_stop takes them), and ignore SIGPIPE (a client that
 * hangs up must not kill the daemon). Call before starting any thread. */
void http_block_stop_signals(void);
/* Wait for SIGTERM or SIGINT; returns "SIGTERM" or "SIGINT". */
const char *http_wait_for_stop(void);

/* The port a daemon actually listens on. */
unsigned http_bound_port(struct MHD_Daemon *d);

#endif
