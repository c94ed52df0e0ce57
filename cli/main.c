/* main.c - pingyi: the admin command line. Dispatch and shared helpers. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/rnd.h"
#include "common/schema.h"

static const char usage[] =
	"usage: pingyi [--db PATH] COMMAND [ARGS]\n"
	"\n"
	"Administer a pingyi database (default var/pingyi.db, or $PINGYI_DB).\n"
	"\n"
	"  init [--base-url URL]           create the database\n"
	"  units import FILE.csv           add or update units (id,parent,kind,name_zh,name_en)\n"
	"  units list [--format F]         list units, their tokens and form URLs\n"
	"  round create ID --form F ...    create a draft round\n"
	"  round open ID | close ID        open a round / close it and record its tally\n"
	"  round list                      list rounds\n"
	"  tally ROUND [--format F]        per-unit figures: table, csv or json\n"
	"  recount ROUND                   check the counters against the raw ballots\n"
	"  qr (--all | UNIT...) [...]      write QR codes (PNG, SVG) for units' form URLs\n"
	"  codes issue ROUND ...           make ballot codes (测评码) for a voter group\n"
	"  complaints sync | list [ROUND]  complaints (投诉) as tickets: make them / list them\n"
	"  complaints take | resolve T ... take a ticket on / resolve it with a note (整改)\n"
	"  complaints times ROUND          time to resolve complaints per unit\n"
	"  review add ROUND ...            record a leader's review (点评) in the ledger\n"
	"  rectify add ROUND --unit U ...  record a unit's rectification (整改) in the ledger\n"
	"  export ROUND --format F ...     export 分类定级汇总表, 整改汇总表 (xlsx, csv)\n"
	"  ledger verify | head            check the ledger's hash chain / print its head\n"
	"\n"
	"Run \"pingyi COMMAND --help\" for a command's options.\n";

static const struct {
	const char *name;
	int (*run)(const cli *c, int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },
	{ "units", cmd_units },
	{ "round", cmd_round },
	{ "tally", cmd_tally },
	{ "recount", cmd_recount },
	{ "qr", cmd_qr },
	{ "codes", cmd_codes },
	{ "complaints", cmd_complaints },
	{ "review", cmd_review },
	{ "rectify", cmd_rectify },
	{ "export", cmd_export },
	{ "ledger", cmd_ledger },
};

int cli_fail(const char *fmt, ...)
{
	buf b;
	buf_init(&b, 8192);
	va_list ap;
	va_start(ap, fmt);
	buf_vfmt(&b, fmt, ap);
	va_end(ap);
	fprintf(stderr, "pingyi: %s\n", buf_str(&b));
	buf_free(&b);
	return CLI_FAIL;
}

int cli_usage(const char *text)
{
	fputs(text, stderr);
	return CLI_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

sqlite3 *cli_open(const cli *c, bool create)
{
	char err[512];
	sqlite3 *db = schema_open(c->db_path, create ? DB_CREATE : DB_READWRITE, err, sizeof err);
	if (!db)
		cli_fail("%s", err);
	return db;
}

char *cli_base_url(sqlite3 *db)
{
	char *url = db_text(db, "SELECT value FROM meta WHERE key = 'base_url'", NULL);
	return url ? url : fmt_alloc("%s", "http://127.0.0.1:8080");
}

/* Take "--db PATH" or "--db=PATH" out of argv, wherever it stands. */
static const char *take_db_option(int *argc, char **argv)
{
	const char *path = NULL;
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < *argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--db=", 5) == 0)
			path = argv[i] + 5;
		else
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return path;
}

int main(int argc, char **argv)
{
	cli c = { .db_path = take_db_option(&argc, argv) };
	if (!c.db_path)
		c.db_path = getenv("PINGYI_DB") ? getenv("PINGYI_DB") : "var/pingyi.db";
	if (argc < 2)
		return cli_usage(usage);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	if (rnd_init() != 0)
		return cli_fail("libsodium could not be initialised (no system randomness?)");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(&c, argc - 1, argv + 1);
	cli_fail("unknown command \"%s\"", argv[1]);
	return cli_usage(usage);
}
