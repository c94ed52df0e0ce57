/* codes.c - pingyi codes issue: ballot codes (测评码) for a meeting.
 *
 * Codes are shown once, here, and stored only as keyed hashes: print them or
 * save the output now. Making and hashing codes is in common/codes.c and
 * aggregator/codes.c. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregator/agg.h"
#include "common/codes.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/str.h"
#include "qr/qr.h"

static const char usage[] =
	"usage: pingyi [--db PATH] codes issue ROUND --group GROUP --scope UNIT --count N\n"
	"                                [--format text|csv] [--qr DIR]\n"
	"\n"
	"Make N ballot codes (测评码) for one voter group (e.g. 党员, 群众, 中层干部) of a\n"
	"round created with --codes. Each code may rate every unit of UNIT's subtree\n"
	"that the round rates, once. The codes are printed now and never again: the\n"
	"database keeps only a keyed hash of each.\n"
	"  --format text   one code a line, as printed on slips: K7M2P-9QAX3-HT4WZ (default)\n"
	"  --format csv    code,url,group,scope (UTF-8 with BOM, for Excel or a mail merge)\n"
	"  --qr DIR        also write DIR/0001.png ...: a QR code of each code's URL\n";

int cmd_codes(const cli *c, int argc, char **argv)
{
	const char *group = NULL, *scope = NULL, *format = "text", *qr_dir = NULL;
	int count = 0;
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "scope", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'f' },
		{ "qr", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2 || strcmp(argv[1], "issue") != 0) {
		if (cli_wants_help(argc, argv)) {
			fputs(usage, stdout);
			return CLI_OK;
		}
		return cli_usage(usage);
	}
	argc--, argv++;
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'g': group = optarg; break;
		case 's': scope = optarg; break;
		case 'f': format = optarg; break;
		case 'q': qr_dir = optarg; break;
		case 'n':
			if (!str_to_int(optarg, 1, 100000, &count))
				return cli_fail("--count takes a number from 1 to 100000");
			break;
		case 'h': fputs(usage, stdout); return CLI_OK;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc - 1 || !group || !scope || !count)
		return cli_usage(usage);
	bool csv = strcmp(format, "csv") == 0;
	if (!csv && strcmp(format, "text") != 0)
		return cli_fail("unknown format \"%s\" (use text or csv)", format);
	if (qr_dir && mkdir(qr_dir, 0755) != 0 && errno != EEXIST)
		return cli_fail("cannot create folder %s: %s", qr_dir, strerror(errno));
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char err[1024];
	const char *round = argv[optind];
	char *codes = agg_codes_issue(db, round, group, scope, count, err, sizeof err);
	char *base = cli_base_url(db);
	db_close(db);
	if (!codes) {
		free(base);
		return cli_fail("%s", err);
	}
	int rc = CLI_OK;
	if (csv)
		fputs("\xEF\xBB\xBF" "code,url,group,scope\r\n", stdout);
	for (int i = 0; i < count; i++) {
		const char *code = codes + (size_t)i * (CODE_LEN + 1);
		char printed[CODE_PRINTED + 1];
		code_print(code, printed);
		char *url = fmt_alloc("%s/c/%s", base, code);
		char *line = csv ? fmt_alloc("%C,%C,%C,%C\r\n", printed, url, group, scope) : fmt_alloc("%s\n", printed);
		fputs(line, stdout);
		fflush(stdout);   /* issued codes must reach the output whatever happens next */
		free(line);
		if (qr_dir && rc == CLI_OK) {
			char name[16];
			snprintf(name, sizeof name, "%04d.png", i + 1);
			char *path = fmt_alloc("%s/%s", qr_dir, name);
			if (qr_write(url, QR_PNG, 8, path, err, sizeof err) != 0)
				rc = cli_fail("%s (the codes above are issued; print them from this output)", err);
			free(path);
		}
		free(url);
	}
	fprintf(stderr, "pingyi: issued %d codes for group %s of round %s; they are shown only now, "
		"so print or save them\n", count, group, round);
	free(codes);
	free(base);
	return rc;
}
