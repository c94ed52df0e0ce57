/* qrcodes.c - pingyi qr: QR code files for units' form URLs.
 *
 * Encoding and file formats are in qr/; this picks units, builds each URL
 * from the base URL and the unit's token, and names files by unit id (ids
 * are restricted to letters, digits, - _ . at import, so they are safe file
 * names). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/str.h"
#include "qr/qr.h"

static const char usage[] =
	"usage: pingyi [--db PATH] qr (--all | UNIT...) [--out DIR] [--format png|svg|both]\n"
	"                             [--scale N]\n"
	"\n"
	"Write DIR/UNIT.png (and/or .svg) holding BASE_URL/u/TOKEN, the unit's form.\n"
	"  --out DIR     folder for the files (default var/qr; created if missing)\n"
	"  --format      png (default), svg or both\n"
	"  --scale N     PNG pixels per module (default 10; the code is ~37 modules wide)\n"
	"The base URL is set with pingyi init --base-url.\n";

static int write_one(const char *dir, const char *id, const char *url, bool png, bool svg, int scale)
{
	char err[512];
	for (int k = 0; k < 2; k++) {
		if (!(k == 0 ? png : svg))
			continue;
		char *path = fmt_alloc("%s/%s.%s", dir, id, k == 0 ? "png" : "svg");
		int rc = qr_write(url, k == 0 ? QR_PNG : QR_SVG, k == 0 ? scale : 8, path, err, sizeof err);
		if (rc == 0)
			printf("%s\t%s\t%s\n", id, url, path);
		free(path);
		if (rc != 0)
			return cli_fail("%s", err);
	}
	return CLI_OK;
}

int cmd_qr(const cli *c, int argc, char **argv)
{
	const char *dir = "var/qr", *format = "png";
	int scale = 10, all = 0;
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "scale", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'a': all = 1; break;
		case 'o': dir = optarg; break;
		case 'f': format = optarg; break;
		case 's':
			if (!str_to_int(optarg, 1, 100, &scale))
				return cli_fail("--scale takes a number from 1 to 100");
			break;
		case 'h': fputs(usage, stdout); return CLI_OK;
		default: return cli_usage(usage);
		}
	}
	bool png = strcmp(format, "png") == 0 || strcmp(format, "both") == 0;
	bool svg = strcmp(format, "svg") == 0 || strcmp(format, "both") == 0;
	if (!png && !svg)
		return cli_fail("unknown format \"%s\" (use png, svg or both)", format);
	if (all == (optind < argc))
		return cli_usage(usage);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		db_close(db);
		return cli_fail("cannot create folder %s: %s", dir, strerror(errno));
	}
	char *base = cli_base_url(db);
	/* DESIGN.md §5: a short URL is about version 3 at level M; a long base
	 * URL makes a dense code that a phone reads badly from a poster at 1 m. */
	char *sample = fmt_alloc("%s/u/xxxxxxxx", base);
	int version = qr_version(sample);
	free(sample);
	if (version > 5)
		fprintf(stderr, "pingyi: note: %s makes QR codes of version %d (dense); a shorter "
			"--base-url (pingyi init) scans better from a distance\n", base, version);
	int rc = CLI_OK, found = 0;
	if (all) {
		sqlite3_stmt *st = db_prepare(db, "SELECT id, token FROM units ORDER BY position", NULL);
		while (rc == CLI_OK && db_step(st) == SQLITE_ROW) {
			char *url = fmt_alloc("%s/u/%s", base, db_col_text(st, 1));
			rc = write_one(dir, db_col_text(st, 0), url, png, svg, scale);
			free(url);
			found++;
		}
		db_finalize(st);
		if (!found)
			rc = cli_fail("there are no units yet (pingyi units import FILE.csv)");
	}
	for (int i = optind; rc == CLI_OK && i < argc; i++) {
		char *token = db_text(db, "SELECT token FROM units WHERE id = ?", "t", argv[i]);
		if (!token) {
			rc = cli_fail("no unit \"%s\" (see: pingyi units list)", argv[i]);
			break;
		}
		char *url = fmt_alloc("%s/u/%s", base, token);
		rc = write_one(dir, argv[i], url, png, svg, scale);
		free(url);
		free(token);
	}
	free(base);
	db_close(db);
	return rc;
}
