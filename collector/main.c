/* main.c - pingyi-collector: options, start-up and orderly shutdown.
 *
 * One libmicrohttpd daemon, its epoll loop run by one thread of ours
 * (loop.c; one loop thread is fastest on two cores, DESIGN.md §5), runs the
 * handler (routes.c); one writer thread commits ballots (writer.c).
 * SIGTERM or SIGINT: stop accepting, let the writer commit and answer what
 * is queued, then exit. */
#include "col.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/http.h"
#include "common/log.h"
#include "common/rnd.h"
#include "common/str.h"

static const char usage[] =
	"usage: pingyi-collector [--db PATH] [--listen HOST:PORT]\n"
	"\n"
	"The public daemon: serves the rating forms and stores ballots.\n"
	"\n"
	"  --db PATH            the database (default var/pingyi.db; create it with pingyi init)\n"
	"  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080; port 0 picks one)\n"
	"  --connections N      most connections at once (default 1024)\n"
	"  --per-ip N           most connections from one address (default 0: no limit,\n"
	"                       as a campus NAT or a proxy puts thousands behind one)\n"
	"  --ballot-limit B,R   open-round ballots per address: a burst of B, then R a\n"
	"                       second (default 3000,20: a campus behind one NAT fits)\n"
	"  --code-limit B,R     refused ballot codes per address (default 60,1)\n"
	"  --drain-seconds N    on SIGTERM, how long to wait for the ballots already\n"
	"                       taken to be committed and answered (default 10); past\n"
	"                       that the batch being written is finished, the queued\n"
	"                       ballots are not written, and the collector exits 1\n"
	"  --trust-proxy        take the client address for rate limits from the last\n"
	"                       X-Forwarded-For entry (or X-Real-IP) when the peer is on\n"
	"                       loopback: nginx with proxy_set_header X-Forwarded-For\n"
	"                       $proxy_add_x_forwarded_for\n"
	"  --help               this text\n";

static void fail(const char *what)
{
	fprintf(stderr, "pingyi-collector: %s\n", what);
	exit(1);
}

/* Limits chosen on purpose: connections bounded; 15 s without progress
 * closes a slow client (slowloris); 24 KiB per connection holds the headers
 * and libmicrohttpd's buffers, while bodies are capped separately
 * (COL_BODY_MAX). libmicrohttpd spends pool memory per cookie, and more on
 * a POST with a body: a ballot with a 500-character comment gets through
 * behind 4.9 KB of short cookies or 8.4 KB of long ones, such as a campus
 * portal may set for the whole domain (at 16 KiB: 2.6 / 4.9 KB, and the
 * ballot is refused with a bare 431 while its form still loads). Each
 * connection holds a pool, which libmicrohttpd zeroes for every request:
 * at 32 KiB, 1,000 connections took the collector's peak RSS to 72 MB. No
 * thread of libmicrohttpd's own: loop.c runs the event loop. */
static struct MHD_Daemon *start_http(const struct sockaddr_in *addr, int connections, int per_ip)
{
	return MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME,
		0, NULL, NULL, col_handle, NULL,
		MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
		MHD_OPTION_NOTIFY_COMPLETED, col_request_done, NULL,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)15,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)24 * 1024,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_END);
}

int main(int argc, char **argv)
{
	const char *db_path = "var/pingyi.db", *listen = "127.0.0.1:8080";
	int connections = 1024, per_ip = 0, drain_seconds = 10;
	bool trust_proxy = false;
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connections", required_argument, NULL, 'c' },
		{ "per-ip", required_argument, NULL, 'p' },
		{ "trust-proxy", no_argument, NULL, 't' },
		{ "ballot-limit", required_argument, NULL, 'b' },
		{ "code-limit", required_argument, NULL, 'k' },
		{ "drain-seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'd': db_path = optarg; break;
		case 'l': listen = optarg; break;
		case 'c':
			if (!str_to_int(optarg, 1, 100000, &connections))
				fail("--connections takes a number from 1 to 100000");
			break;
		case 'p':
			if (!str_to_int(optarg, 0, 100000, &per_ip))
				fail("--per-ip takes a number from 0 to 100000");
			break;
		case 't': trust_proxy = true; break;
		case 'b':
			if (!col_limit_set(COL_LIMIT_OPEN_BALLOTS, optarg))
				fail("--ballot-limit takes BURST,PER_SECOND, e.g. 3000,20");
			break;
		case 'k':
			if (!col_limit_set(COL_LIMIT_CODE_FAILURES, optarg))
				fail("--code-limit takes BURST,PER_SECOND, e.g. 60,1");
			break;
		case 's':
			if (!str_to_int(optarg, 0, 3600, &drain_seconds))
				fail("--drain-seconds takes a number from 0 to 3600");
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	log_init("pingyi-collector");
	/* SQLite's memory statistics take a global mutex on every allocation,
	 * from all three threads; nothing here reads them. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	char err[512];
	struct sockaddr_in addr;
	if (http_parse_listen(listen, &addr, err, sizeof err) != 0)
		fail(err);
	if (rnd_init() != 0)
		fail("libsodium could not be initialised (no system randomness?)");

	http_block_stop_signals();

	if (col_routes_init(db_path, trust_proxy, err, sizeof err) != 0 || col_writer_start(db_path, err, sizeof err) != 0)
		fail(err);
	struct MHD_Daemon *d = start_http(&addr, connections, per_ip);
	if (!d) {
		fmt_into(err, sizeof err, "cannot listen on %s (in use, or not an address of this machine?)", listen);
		fail(err);
	}
	if (col_loop_start(d, (unsigned)connections) != 0)
		fail("cannot start the HTTP thread (out of memory or threads?)");
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
	log_info("listening on http://%s:%u (database %s)", host, http_bound_port(d), db_path);

	log_info("got %s, shutting down", http_wait_for_stop());
	col_loop_quiesce();
	/* Refuse new ballots (503), let the admitted ones commit and be answered,
	 * then give the answers a moment to leave before closing connections. */
	if (!col_writer_drain(drain_seconds * 1000)) {
		/* The writer finishes the batch it is writing (it waits for a stuck
		 * disk as long as that takes), and the loop answers its raters;
		 * the queued ballots stay unwritten and unanswered. Not
		 * MHD_stop_daemon: it aborts the process while connections are
		 * still suspended. */
		log_warn("ballots still unanswered after %d s (the database locked, or the disk stuck?); "
			"stopping without writing the queued ones", drain_seconds);
		col_writer_stop();
		usleep(50 * 1000);
		col_loop_stop();
		return 1;
	}
	usleep(50 * 1000);
	col_loop_stop();
	MHD_stop_daemon(d);
	col_writer_stop();
	col_routes_free();
	log_info("stopped");
	return 0;
}
