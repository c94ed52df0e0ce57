/* http.c - see http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "str.h"

static const char csp[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static void add_headers(struct MHD_Response *r, const char *content_type, enum http_cache cache,
	const char *const *headers)
{
	MHD_add_response_header(r, "Content-Type", content_type);
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control",
		cache == HTTP_NO_STORE ? "no-store" : "public, max-age=86400");
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(r, headers[0], headers[1]);
}

enum MHD_Result http_queue_once(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	enum MHD_Result ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

struct MHD_Response *http_response(const char *content_type, const char *body, size_t len,
	enum http_cache cache, const char *const *headers)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r)
		add_headers(r, content_type, cache, headers);
	return r;
}

enum MHD_Result http_send(struct MHD_Connection *c, unsigned status, const char *content_type,
	const char *body, size_t len, enum http_cache cache, const char *const *headers)
{
	return http_queue_once(c, status, http_response(content_type, body, len, cache, headers));
}

enum MHD_Result http_send_owned(struct MHD_Connection *c, unsigned status, const char *content_type,
	char *body, size_t len, enum http_cache cache, const char *const *headers)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	add_headers(r, content_type, cache, headers);
	return http_queue_once(c, status, r);
}

/* The q-value of one Accept-Language item ("en-US;q=0.8" -> 0.8). */
static double q_of(const char *item)
{
	const char *q = strstr(item, ";q=");
	double v = 1.0;
	if (q && !str_to_double(q + 3, 0, 1, &v))
		v = 0;
	return v;
}

bool http_wants_english(struct MHD_Connection *c)
{
	const char *lang = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lang");
	if (lang)
		return strcmp(lang, "en") == 0;
	const char *al = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language");
	if (!al)
		return false;
	double best_zh = -1, best_en = -1;
	char item[64];
	while (*al) {
		size_t n = strcspn(al, ",");
		str_copy(item, sizeof item < n + 1 ? sizeof item : n + 1, al);
		str_trim(item);
		double q = q_of(item);
		if ((item[0] == 'z' || item[0] == 'Z') && (item[1] == 'h' || item[1] == 'H') && q > best_zh)
			best_zh = q;
		if ((item[0] == 'e' || item[0] == 'E') && (item[1] == 'n' || item[1] == 'N') && q > best_en)
			best_en = q;
		al += n + (al[n] == ',');
	}
	return best_en > best_zh && best_en > 0;
}

int http_parse_listen(const char *spec, struct sockaddr_in *out, char *err, size_t errsize)
{
	const char *colon = strrchr(spec, ':');
	char host[64];
	int port;
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	if (!colon || (size_t)(colon - spec) >= sizeof host || !str_to_int(colon + 1, 0, 65535, &port)) {
		fmt_into(err, errsize, "bad listen address \"%s\": expected HOST:PORT, e.g. 127.0.0.1:8080", spec);
		return -1;
	}
	str_copy(host, (size_t)(colon - spec) + 1, spec);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
		fmt_into(err, errsize, "bad listen address \"%s\": %s is not an IPv4 address", spec, host);
		return -1;
	}
	out->sin_port = htons((uint16_t)port);
	return 0;
}

unsigned http_bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	return info ? info->port : 0;
}

static sigset_t stop_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return set;
}

void http_block_stop_signals(void)
{
	sigset_t set = stop_signals();
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

const char *http_wait_for_stop(void)
{
	sigset_t set = stop_signals();
	int sig = 0;
	sigwait(&set, &sig);
	return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}
