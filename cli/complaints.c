/* complaints.c - pingyi complaints ..., review add and rectify add: the
 * office's follow-up of a round (投诉, 点评, 整改).
 *
 * The rules (when tickets are made, which moves are allowed, when a
 * complaint's text may be shown, what goes to the ledger) live in
 * aggregator/complaints.c; this file reads options and prints. Text typed
 * by raters reaches a terminal here, so it is cleaned of control and
 * direction-override characters first (term_text). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aggregator/agg.h"
#include "common/buf.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

static const char usage_complaints[] =
	"usage: pingyi [--db PATH] complaints sync\n"
	"       pingyi [--db PATH] complaints list [ROUND] [--unit UNIT] [--state STATE]\n"
	"                                          [--format table|csv]\n"
	"       pingyi [--db PATH] complaints take TICKET --by NAME [--note TEXT]\n"
	"       pingyi [--db PATH] complaints resolve TICKET --by NAME --note TEXT\n"
	"       pingyi [--db PATH] complaints times ROUND [--format table|csv]\n"
	"\n"
	"A comment a rater marks as a complaint (投诉) becomes a numbered ticket for the\n"
	"unit's secretary: new -> in_progress -> resolved. Each step is written to the\n"
	"ledger with who took it; the complaint's text never is.\n"
	"  sync     make tickets for new complaints. A round's complaints become tickets\n"
	"           at most once an hour, the first an hour after it opened, so that a\n"
	"           ticket's number and time tell nothing finer about when its ballot\n"
	"           came. pingyi-aggregator does this by itself while it runs.\n"
	"  list     tickets by number: round, unit, STATE (new, in_progress, resolved),\n"
	"           age (for a resolved one: how long it took), who has it, and the\n"
	"           complaint. The text is shown only once the unit has at least the\n"
	"           round's minimum of comments (10 by default), so that no one can be\n"
	"           picked out by how they write.\n"
	"  take     NAME takes the ticket on (new -> in_progress); TICKET is its number\n"
	"  resolve  close it with a note of what was done, the rectification (整改)\n"
	"           record (new or in_progress -> resolved); a resolved ticket stays so\n"
	"  times    per unit: tickets, resolved, median and longest time to resolve and\n"
	"           the longest-waiting open ticket, in hours\n";

static const char usage_review[] =
	"usage: pingyi [--db PATH] review add ROUND [--unit UNIT] --by NAME --text TEXT\n"
	"\n"
	"Record a leader's review (点评) of a round, or of one unit in it, in the\n"
	"ledger. UNIT is any unit the round's tally lists.\n";

static const char usage_rectify[] =
	"usage: pingyi [--db PATH] rectify add ROUND --unit UNIT --by NAME --text TEXT\n"
	"\n"
	"Record what a unit did to rectify (整改) after a round, apart from resolving\n"
	"complaints (e.g. a 后进 branch's measures), in the ledger.\n";

/* ---- small helpers ---- */

/* Rater-typed text made safe for a terminal: C0/C1 controls, DEL and
 * bidirectional overrides become '?'; TAB and CR become a space; a line
 * break starts a new line indented by indent (or a space when indent is
 * NULL). Caller frees. */
static char *term_text(const char *s, const char *indent)
{
	buf b;
	buf_init(&b, 1 << 20);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p == '\n') {
			buf_puts(&b, indent ? "\n" : " ");
			if (indent)
				buf_puts(&b, indent);
			p++;
		} else if (*p == '\t' || *p == '\r') {
			buf_putc(&b, ' ');
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_putc(&b, '?');
			p++;
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {      /* U+0080-009F */
			buf_putc(&b, '?');
			p += 2;
		} else if (p[0] == 0xe2 && ((p[1] == 0x80 && ((p[2] >= 0xaa && p[2] <= 0xae) || p[2] == 0x8e ||
				p[2] == 0x8f)) || (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
			buf_putc(&b, '?');                                      /* U+202A-E, 200E/F, 2066-9 */
			p += 3;
		} else
			buf_putc(&b, (char)*p++);
	}
	return buf_take(&b);
}

/* s left-aligned in width terminal columns. */
static void pad(buf *out, const char *s, size_t width)
{
	buf_fmt(out, "%s", s);
	for (size_t w = utf8_width(s); w < width; w++)
		buf_putc(out, ' ');
}

static void local_time(buf *out, int64_t t)
{
	if (!t)
		return;
	time_t tt = (time_t)t;
	struct tm tm;
	char s[32];
	if (localtime_r(&tt, &tm) && strftime(s, sizeof s, "%Y-%m-%d %H:%M", &tm))
		buf_fmt(out, "%s", s);
}

static void age(buf *out, int64_t secs)
{
	int64_t h = secs / 3600;
	if (h < 1)
		buf_puts(out, "<1h");
	else if (h < 48)
		buf_fmt(out, "%lldh", (long long)h);
	else
		buf_fmt(out, "%lldd %lldh", (long long)(h / 24), (long long)(h % 24));
}

static int64_t age_of(const agg_ticket *t, int64_t now)
{
	int64_t end = t->resolved_at ? t->resolved_at : now;
	return end > t->opened_at ? end - t->opened_at : 0;
}

/* "12" or "#12". */
static bool parse_ticket(const char *s, int64_t *out)
{
	return str_to_i64(s[0] == '#' ? s + 1 : s, 1, INT64_MAX, out);
}

static void emit(buf *out)
{
	fwrite(buf_str(out), 1, out->len, stdout);
	buf_free(out);
}

/* ---- complaints ---- */

static int sync_tickets(const cli *c)
{
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char err[1024];
	int64_t next = 0;
	int made = agg_complaints_sync(db, (int64_t)time(NULL), "pingyi complaints sync", &next, err, sizeof err);
	db_close(db);
	if (made < 0)
		return cli_fail("%s", err);
	buf out;
	buf_init(&out, 4096);
	if (made > 0)
		buf_fmt(&out, "opened %d ticket%s (see: pingyi complaints list)\n", made, made == 1 ? "" : "s");
	else
		buf_puts(&out, "no new tickets\n");
	if (next) {
		buf_puts(&out, "complaints become tickets once an hour per round; the next batch is due at ");
		local_time(&out, next);
		buf_puts(&out, "\n");
	}
	emit(&out);
	return CLI_OK;
}

static void list_table(const agg_ticket *t, size_t n, int64_t now, buf *out)
{
	if (n == 0) {
		buf_puts(out, "no tickets\n");
		return;
	}
	size_t w_id = strlen("ticket"), w_round = strlen("round"), w_unit = strlen("unit");
	char **round = xcalloc(n, sizeof *round), **unit = xcalloc(n, sizeof *unit);
	for (size_t i = 0; i < n; i++) {
		char id[32];
		fmt_into(id, sizeof id, "#%lld", (long long)t[i].id);
		round[i] = term_text(t[i].round, NULL);
		unit[i] = term_text(t[i].unit, NULL);
		w_id = strlen(id) > w_id ? strlen(id) : w_id;
		w_round = utf8_width(round[i]) > w_round ? utf8_width(round[i]) : w_round;
		w_unit = utf8_width(unit[i]) > w_unit ? utf8_width(unit[i]) : w_unit;
	}
	pad(out, "ticket", w_id + 2);
	pad(out, "round", w_round + 2);
	pad(out, "unit", w_unit + 2);
	buf_puts(out, "state        age      by\n");
	for (size_t i = 0; i < n; i++) {
		char id[32];
		fmt_into(id, sizeof id, "#%lld", (long long)t[i].id);
		pad(out, id, w_id + 2);
		pad(out, round[i], w_round + 2);
		pad(out, unit[i], w_unit + 2);
		pad(out, t[i].state, 13);
		buf a;
		buf_init(&a, 64);
		age(&a, age_of(&t[i], now));
		pad(out, buf_str(&a), 9);
		buf_free(&a);
		char *by = term_text(t[i].by ? t[i].by : "", NULL);
		buf_fmt(out, "%s\n", by);
		free(by);
		if (t[i].text) {
			char *text = term_text(t[i].text, "    ");
			buf_fmt(out, "    %s\n", text);
			free(text);
		} else {
			buf_fmt(out, "    (text withheld until %s has %d comments in round %s; it has %lld)\n",
				unit[i], t[i].k_comments, round[i], (long long)t[i].comments);
		}
		free(round[i]);
		free(unit[i]);
	}
	free(round);
	free(unit);
}

static void list_csv(const agg_ticket *t, size_t n, int64_t now, buf *out)
{
	buf_puts(out, "\xEF\xBB\xBFticket,round,unit,state,opened,taken,resolved,by,age_hours,"
		"comment_shown,comment\r\n");
	for (size_t i = 0; i < n; i++) {
		buf_fmt(out, "%lld,%C,%C,%C,", (long long)t[i].id, t[i].round, t[i].unit, t[i].state);
		local_time(out, t[i].opened_at);
		buf_putc(out, ',');
		local_time(out, t[i].taken_at);
		buf_putc(out, ',');
		local_time(out, t[i].resolved_at);
		buf_fmt(out, ",%C,%.1f,%d,%C\r\n", t[i].by, (double)age_of(&t[i], now) / 3600,
			t[i].text ? 1 : 0, t[i].text);
	}
}

static int list(const cli *c, int argc, char **argv)
{
	const char *unit = NULL, *state = NULL, *format = "table";
	static const struct option opts[] = {
		{ "unit", required_argument, NULL, 'u' },
		{ "state", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'u': unit = optarg; break;
		case 's': state = optarg; break;
		case 'f': format = optarg; break;
		default: return cli_usage(usage_complaints);
		}
	}
	if (optind < argc - 1)
		return cli_usage(usage_complaints);
	const char *round = optind == argc - 1 ? argv[optind] : NULL;
	bool csv = str_eq(format, "csv");
	if (!csv && !str_eq(format, "table"))
		return cli_fail("unknown format \"%s\" (use table or csv)", format);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	agg_ticket *t;
	size_t n;
	char err[1024];
	int rc = agg_tickets_list(db, round, unit, state, &t, &n, err, sizeof err);
	db_close(db);
	if (rc != 0)
		return cli_fail("%s", err);
	buf out;
	buf_init(&out, 256 << 20);
	(csv ? list_csv : list_table)(t, n, (int64_t)time(NULL), &out);
	agg_tickets_free(t, n);
	emit(&out);
	return CLI_OK;
}

static int move(const cli *c, bool resolve, int argc, char **argv)
{
	const char *by = NULL, *note = NULL;
	static const struct option opts[] = {
		{ "by", required_argument, NULL, 'b' },
		{ "note", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'b': by = optarg; break;
		case 'n': note = optarg; break;
		default: return cli_usage(usage_complaints);
		}
	}
	if (optind != argc - 1 || !by)
		return cli_usage(usage_complaints);
	int64_t ticket;
	if (!parse_ticket(argv[optind], &ticket))
		return cli_fail("bad ticket \"%s\": use its number, as pingyi complaints list shows it (e.g. 12)",
			argv[optind]);
	if (resolve && !note)
		return cli_fail("resolving ticket %lld needs --note: what was done (the 整改 record)", (long long)ticket);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char err[1024];
	int64_t now = (int64_t)time(NULL);
	int rc = (resolve ? agg_ticket_resolve : agg_ticket_take)(db, ticket, by, note, now, err, sizeof err);
	db_close(db);
	if (rc != 0)
		return cli_fail("%s", err);
	printf("ticket %lld is %s; the step is in the ledger\n", (long long)ticket,
		resolve ? "resolved" : "in progress");
	return CLI_OK;
}

/* s right-aligned in width columns (ASCII). */
static void rpad(buf *out, const char *s, size_t width)
{
	for (size_t w = strlen(s); w < width; w++)
		buf_putc(out, ' ');
	buf_fmt(out, "%s", s);
}

static void count(buf *out, int64_t n, size_t width, bool csv)
{
	char s[32];
	fmt_into(s, sizeof s, "%lld", (long long)n);
	if (csv)
		buf_fmt(out, ",%s", s);
	else
		rpad(out, s, width);
}

/* Hours with one decimal; empty (csv) or "-" when not shown. */
static void hours(buf *out, bool shown, double h, size_t width, bool csv)
{
	char s[32] = "-";
	if (shown)
		fmt_into(s, sizeof s, "%.1f", h);
	if (csv)
		buf_fmt(out, ",%s", shown ? s : "");
	else
		rpad(out, s, width);
}

static int resolve_times(const cli *c, int argc, char **argv)
{
	const char *format = "table";
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (o != 'f')
			return cli_usage(usage_complaints);
		format = optarg;
	}
	if (optind != argc - 1)
		return cli_usage(usage_complaints);
	bool csv = str_eq(format, "csv");
	if (!csv && !str_eq(format, "table"))
		return cli_fail("unknown format \"%s\" (use table or csv)", format);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	agg_resolve_time *r;
	size_t n;
	char err[1024];
	int rc = agg_resolve_times(db, argv[optind], (int64_t)time(NULL), &r, &n, err, sizeof err);
	db_close(db);
	if (rc != 0)
		return cli_fail("%s", err);
	buf out;
	buf_init(&out, 64 << 20);
	size_t w = strlen("unit");
	for (size_t i = 0; i < n; i++)
		w = utf8_width(r[i].unit) > w ? utf8_width(r[i].unit) : w;
	if (csv)
		buf_puts(&out, "\xEF\xBB\xBFunit,tickets,resolved,open,median_hours,max_hours,oldest_open_hours\r\n");
	else if (n == 0)
		buf_fmt(&out, "no tickets in round %s\n", argv[optind]);
	else {
		pad(&out, "unit", w + 2);
		buf_puts(&out, "tickets resolved  open  median_h     max_h  oldest_open_h\n");
	}
	for (size_t i = 0; i < n; i++) {
		int64_t open = r[i].tickets - r[i].resolved;
		if (csv)
			buf_fmt(&out, "%C", r[i].unit);
		else {
			char *unit = term_text(r[i].unit, NULL);
			pad(&out, unit, w + 2);
			free(unit);
		}
		count(&out, r[i].tickets, 7, csv);
		count(&out, r[i].resolved, 9, csv);
		count(&out, open, 6, csv);
		hours(&out, r[i].resolved > 0, r[i].median_hours, 10, csv);
		hours(&out, r[i].resolved > 0, r[i].max_hours, 10, csv);
		hours(&out, open > 0, r[i].oldest_open_hours, 15, csv);
		buf_puts(&out, csv ? "\r\n" : "\n");
	}
	agg_resolve_times_free(r, n);
	emit(&out);
	return CLI_OK;
}

int cmd_complaints(const cli *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage_complaints, stdout);
		return CLI_OK;
	}
	const char *sub = argc >= 2 ? argv[1] : "";
	if (str_eq(sub, "sync") && argc == 2)
		return sync_tickets(c);
	if (str_eq(sub, "list"))
		return list(c, argc - 1, argv + 1);
	if (str_eq(sub, "take") || str_eq(sub, "resolve"))
		return move(c, str_eq(sub, "resolve"), argc - 1, argv + 1);
	if (str_eq(sub, "times"))
		return resolve_times(c, argc - 1, argv + 1);
	return cli_usage(usage_complaints);
}

/* ---- reviews and rectification ---- */

static int record(const cli *c, bool review, int argc, char **argv)
{
	const char *usage = review ? usage_review : usage_rectify;
	if (cli_wants_help(argc, argv)) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (argc < 2 || !str_eq(argv[1], "add"))
		return cli_usage(usage);
	argc--, argv++;
	const char *unit = NULL, *by = NULL, *text = NULL;
	static const struct option opts[] = {
		{ "unit", required_argument, NULL, 'u' },
		{ "by", required_argument, NULL, 'b' },
		{ "text", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'u': unit = optarg; break;
		case 'b': by = optarg; break;
		case 't': text = optarg; break;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc - 1 || !by || !text || (!review && !unit))
		return cli_usage(usage);
	const char *round = argv[optind];
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char err[1024];
	int64_t seq = (review ? agg_review_add : agg_rectify_add)(db, round, unit, by, text, err, sizeof err);
	db_close(db);
	if (seq < 0)
		return cli_fail("%s", err);
	printf("%s recorded in the ledger as entry %lld\n", review ? "review" : "rectification",
		(long long)seq);
	return CLI_OK;
}

int cmd_review(const cli *c, int argc, char **argv)
{
	return record(c, true, argc, argv);
}

int cmd_rectify(const cli *c, int argc, char **argv)
{
	return record(c, false, argc, argv);
}
