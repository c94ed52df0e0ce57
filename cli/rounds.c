/* rounds.c - pingyi round ..., tally and ledger: a round's life and its record.
 *
 * The rules of each step (what opening freezes, what closing records) live
 * in aggregator/round.c and aggregator/ledger.c; this file reads options and
 * prints. */
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

static const char usage_round[] =
	"usage: pingyi [--db PATH] round create ID --form FORM --title-zh TITLE --title-en TITLE\n"
	"                                [--series NAME] [--scope UNIT] [--closes WHEN] [--codes]\n"
	"                                [--rules FILE]\n"
	"       pingyi [--db PATH] round open ID\n"
	"       pingyi [--db PATH] round close ID\n"
	"       pingyi [--db PATH] round list\n"
	"\n"
	"  ID         1-64 lowercase letters, digits, - and _ (e.g. 2026h2-branch)\n"
	"  FORM       a form file, or the name of a shipped one: branch, window\n"
	"  --series   rounds of one series are compared over time (e.g. 党支部年度测评)\n"
	"  --scope    rate only this unit's subtree (default: the whole organisation)\n"
	"  WHEN       \"YYYY-MM-DD HH:MM\" (local time), YYYY-MM-DD (end of that day),\n"
	"             +Nd / +Nh / +Nm from now, or @UNIXTIME; the aggregator closes the\n"
	"             round then\n"
	"  --rules    the round's rules (target, grades, veto, cap, group weights, k,\n"
	"             roll-up; see docs/rules.md); default: DESIGN.md's, 95% target\n"
	"  --codes    only ballots with a code count (meetings: pingyi codes issue);\n"
	"             without it anyone with the unit's QR code may rate it (posters)\n"
	"Opening fixes which units the round rates (those in scope whose kind the form\n"
	"rates) and writes the rules to the ledger; closing writes the final tally.\n";

static const char usage_tally[] =
	"usage: pingyi [--db PATH] tally ROUND [--format table|csv|json]\n"
	"\n"
	"Per unit: ballots, valid answers, satisfaction rate, score, target met and\n"
	"grade, and for parent units the figures of their whole subtree. Figures from\n"
	"fewer valid ballots than the round's minimum (5 by default) are not shown.\n";

static const char usage_recount[] =
	"usage: pingyi [--db PATH] recount ROUND\n"
	"\n"
	"Count the round's raw ballots again and compare every counter the collector\n"
	"kept (per unit, voter group, question and answer) and the tally computed from\n"
	"them. Exit 0 when they agree, 1 with each difference listed.\n";

static const char usage_ledger[] =
	"usage: pingyi [--db PATH] ledger verify    check every entry of the hash chain\n"
	"       pingyi [--db PATH] ledger head      print the newest entry's hash, to publish\n";

/* Resolve a form name or path to a file that exists. */
static char *form_path(const char *name)
{
	if (strchr(name, '/') || strstr(name, ".form"))
		return xstrdup(name);
	const char *dirs[] = { "forms", "/usr/local/share/pingyi/forms", "/usr/share/pingyi/forms" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *p = fmt_alloc("%s/%s.form", dirs[i], name);
		FILE *f = fopen(p, "r");
		if (f) {
			fclose(f);
			return p;
		}
		free(p);
	}
	return fmt_alloc("forms/%s.form", name);
}

/* Parse WHEN (see usage) into unix time; false when it is not one of the forms. */
static bool parse_when(const char *s, int64_t *out)
{
	int64_t n;
	if (s[0] == '@')
		return str_to_i64(s + 1, 1, INT64_C(253402300799), out);
	if (s[0] == '+') {
		size_t len = strlen(s);
		char num[24];
		if (len < 3 || len > sizeof num)
			return false;
		str_copy(num, len - 1, s + 1);
		int64_t unit = s[len - 1] == 'd' ? 86400 : s[len - 1] == 'h' ? 3600 : s[len - 1] == 'm' ? 60 : 0;
		if (!unit || !str_to_i64(num, 1, 3650 * 86400 / unit, &n))
			return false;
		*out = (int64_t)time(NULL) + n * unit;
		return true;
	}
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%d %H:%M", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return false;
		tm.tm_hour = 23, tm.tm_min = 59, tm.tm_sec = 59;
	}
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	if (t == (time_t)-1)
		return false;
	*out = (int64_t)t;
	return true;
}

static int create(const cli *c, int argc, char **argv)
{
	agg_round_spec spec = { 0 };
	const char *form_arg = NULL, *closes = NULL;
	static const struct option opts[] = {
		{ "form", required_argument, NULL, 'f' },
		{ "title-zh", required_argument, NULL, 'z' },
		{ "title-en", required_argument, NULL, 'e' },
		{ "series", required_argument, NULL, 's' },
		{ "scope", required_argument, NULL, 'p' },
		{ "closes", required_argument, NULL, 'c' },
		{ "codes", no_argument, NULL, 'k' },
		{ "rules", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'f': form_arg = optarg; break;
		case 'z': spec.title_zh = optarg; break;
		case 'e': spec.title_en = optarg; break;
		case 's': spec.series = optarg; break;
		case 'p': spec.scope = optarg; break;
		case 'c': closes = optarg; break;
		case 'k': spec.codes_required = true; break;
		case 'r': spec.rules_path = optarg; break;
		default: return cli_usage(usage_round);
		}
	}
	if (optind != argc - 1 || !form_arg)
		return cli_usage(usage_round);
	spec.id = argv[optind];
	if (closes && !parse_when(closes, &spec.closes_at))
		return cli_fail("bad --closes \"%s\": use \"YYYY-MM-DD HH:MM\", YYYY-MM-DD, +7d, +12h, +30m "
			"or @UNIXTIME", closes);
	if (closes && spec.closes_at <= (int64_t)time(NULL))
		return cli_fail("--closes \"%s\" is in the past", closes);
	char *path = form_path(form_arg);
	spec.form_path = path;
	sqlite3 *db = cli_open(c, false);
	char err[1024];
	int rc = !db ? CLI_FAIL : agg_round_create(db, &spec, err, sizeof err) == 0 ? CLI_OK : cli_fail("%s", err);
	if (rc == CLI_OK)
		printf("round %s created as a draft (form %s); open it with: pingyi round open %s\n",
			spec.id, path, spec.id);
	free(path);
	db_close(db);
	return rc;
}

static int transition(const cli *c, const char *verb, const char *round)
{
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char err[1024];
	bool open = strcmp(verb, "open") == 0;
	int rc = (open ? agg_round_open : agg_round_close)(db, round, err, sizeof err);
	if (rc == 0 && open)
		printf("round %s is open: %lld units can be rated\n", round, (long long)db_int(db, 0,
			"SELECT count(*) FROM round_units WHERE round = ?", "t", round));
	else if (rc == 0)
		printf("round %s is closed; its tally is in the ledger (pingyi tally %s)\n", round, round);
	db_close(db);
	return rc == 0 ? CLI_OK : cli_fail("%s", err);
}

static int list(const cli *c)
{
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	sqlite3_stmt *st = db_prepare(db, "SELECT r.id, r.state, r.title_zh, r.form_id, "
		"(SELECT count(*) FROM round_units WHERE round = r.id), "
		"(SELECT coalesce(sum(n), 0) FROM ballot_counts WHERE round = r.id), "
		"coalesce(datetime(r.closes_at, 'unixepoch', 'localtime'), '') FROM rounds r ORDER BY r.rowid", NULL);
	printf("%-24s %-7s %6s %8s  %-17s %s\n", "round", "state", "units", "ballots", "closes", "title");
	while (db_step(st) == SQLITE_ROW)
		printf("%-24s %-7s %6d %8lld  %-17.16s %s (%s)\n", db_col_text(st, 0), db_col_text(st, 1),
			sqlite3_column_int(st, 4), (long long)sqlite3_column_int64(st, 5), db_col_text(st, 6),
			db_col_text(st, 2), db_col_text(st, 3));
	db_finalize(st);
	db_close(db);
	return CLI_OK;
}

int cmd_round(const cli *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage_round, stdout);
		return CLI_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return create(c, argc - 1, argv + 1);
	if (argc == 3 && (strcmp(argv[1], "open") == 0 || strcmp(argv[1], "close") == 0))
		return transition(c, argv[1], argv[2]);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return list(c);
	return cli_usage(usage_round);
}

int cmd_tally(const cli *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage_tally, stdout);
		return CLI_OK;
	}
	const char *format = "table";
	if (argc == 4 && strcmp(argv[2], "--format") == 0)
		format = argv[3];
	else if (argc != 2)
		return cli_usage(usage_tally);
	if (strcmp(format, "table") != 0 && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
		return cli_fail("unknown format \"%s\" (use table, csv or json)", format);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	agg_tally t;
	char err[1024];
	if (agg_tally_load(db, argv[1], &t, err, sizeof err) != 0) {
		db_close(db);
		return cli_fail("%s", err);
	}
	buf out;
	buf_init(&out, 256 << 20);
	if (strcmp(format, "json") == 0)
		agg_tally_json(&t, &out);
	else if (strcmp(format, "csv") == 0)
		agg_tally_csv(&t, &out);
	else
		agg_tally_text(&t, &out);
	fwrite(buf_str(&out), 1, out.len, stdout);
	buf_free(&out);
	agg_tally_free(&t);
	db_close(db);
	return CLI_OK;
}

int cmd_ledger(const cli *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage_ledger, stdout);
		return CLI_OK;
	}
	bool verify = argc == 2 && strcmp(argv[1], "verify") == 0;
	if (!verify && !(argc == 2 && strcmp(argv[1], "head") == 0))
		return cli_usage(usage_ledger);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	int rc = CLI_OK;
	if (verify) {
		buf report;
		buf_init(&report, 1 << 20);
		int64_t bad = agg_ledger_verify(db, &report);
		fputs(buf_str(&report), bad ? stderr : stdout);
		buf_free(&report);
		rc = bad ? CLI_FAIL : CLI_OK;
	} else {
		char *head = db_text(db, "SELECT seq || ' ' || lower(hex(hash)) FROM ledger ORDER BY seq DESC LIMIT 1", NULL);
		printf("%s\n", head ? head : "0 (the ledger is empty)");
		free(head);
	}
	db_close(db);
	return rc;
}

int cmd_recount(const cli *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(usage_recount, stdout);
		return CLI_OK;
	}
	if (argc != 2)
		return cli_usage(usage_recount);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	buf report;
	buf_init(&report, 16 << 20);
	int diffs = agg_recount_diff(db, argv[1], &report);
	agg_tally kept, raw;
	char err[1024];
	int rc = diffs < 0 ? cli_fail("no round \"%s\" (see: pingyi round list)", argv[1]) : CLI_OK;
	if (rc == CLI_OK && agg_tally_load(db, argv[1], &kept, err, sizeof err) == 0) {
		if (agg_tally_recount(db, argv[1], &raw, err, sizeof err) == 0) {
			buf a, b;
			buf_init(&a, 256 << 20);
			buf_init(&b, 256 << 20);
			agg_tally_json(&kept, &a);
			agg_tally_json(&raw, &b);
			if (strcmp(buf_str(&a), buf_str(&b)) != 0 && ++diffs)
				buf_puts(&report, "the tally from the counters differs from the tally from the ballots\n");
			buf_free(&a);
			buf_free(&b);
			agg_tally_free(&raw);
		}
		agg_tally_free(&kept);
	}
	if (rc == CLI_OK && diffs) {
		fputs(buf_str(&report), stderr);
		rc = cli_fail("%d difference%s between the counters and the ballots of round %s", diffs,
			diffs == 1 ? "" : "s", argv[1]);
	} else if (rc == CLI_OK) {
		printf("round %s: the counters agree with its %lld ballots\n", argv[1], (long long)db_int(db, 0,
			"SELECT count(*) FROM ballots WHERE round = ?", "t", argv[1]));
	}
	buf_free(&report);
	db_close(db);
	return rc;
}
