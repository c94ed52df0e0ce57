/* export.c - pingyi export: a round's 分类定级汇总表 and 整改汇总表 as a file
 * for the office to send upward (XLSX, or CSV for Excel).
 *
 * What the tables hold, and the privacy rule they keep, is in
 * aggregator/export.c; this file reads options and writes the file so that
 * it is never seen half written: the export goes to a temporary file beside
 * FILE, which is synced and then renamed over FILE. A failure, or an
 * interrupt, removes the temporary file and leaves FILE as it was. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/agg.h"
#include "common/buf.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

static const char usage[] =
	"usage: pingyi [--db PATH] export ROUND --format xlsx|csv [--table grades|rectification]\n"
	"                                 --out FILE\n"
	"\n"
	"Write a round's results for the office to send upward.\n"
	"  --format xlsx   a workbook: 分类定级汇总表 (per unit: votes, satisfaction rate,\n"
	"                  score, target met, grade, rank, trend, subtree figures),\n"
	"                  整改汇总表 (complaint tickets, time to resolve, rectification\n"
	"                  records and leaders' reviews), 明细 (per question and voter\n"
	"                  group) and, for a code round, 参评率 (participation)\n"
	"  --format csv    one table for Excel (UTF-8 BOM, CRLF): --table grades\n"
	"                  (分类定级汇总表, the default) or --table rectification (整改汇总表)\n"
	"  --out FILE      the file to write; replaced whole, never left half written\n"
	"Figures from fewer valid ballots than the round's minimum (5 by default), or\n"
	"that would reveal such a figure, are written as \"—\". Rates are cut (not\n"
	"rounded) to 0.01%, so a rate below the target never shows as meeting it.\n";

/* The temporary file being written, for the signal handler to remove. */
static char *volatile temp_path;

static void on_signal(int sig)
{
	char *p = temp_path;
	if (p)
		unlink(p);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(bool on)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { 0 };
	sa.sa_handler = on ? on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

/* The folder of path ("." when it names none); caller frees. */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Flush path's data (and, for a folder, its entries) to disk. */
static bool sync_path(const char *path, bool folder)
{
	int fd = open(path, folder ? O_RDONLY | O_DIRECTORY : O_RDONLY);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0 || (folder && (errno == EINVAL || errno == EBADF));
	close(fd);
	return ok;
}

/* Write the export to a temporary file beside out and rename it to out.
 * csv is the CSV text, or NULL for the workbook. Returns CLI_OK or fails
 * with a message, out left as it was. */
static int write_file(sqlite3 *db, const agg_tally *t, const buf *csv, const char *out)
{
	char *dir = folder_of(out);
	const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	if (!*base) {
		free(dir);
		return cli_fail("--out \"%s\" names a folder, not a file", out);
	}
	buf tmp;
	buf_init(&tmp, 8192);
	buf_puts(&tmp, dir);
	buf_puts(&tmp, "/.");
	buf_puts(&tmp, base);
	buf_puts(&tmp, ".XXXXXX");
	if (tmp.overflow) {
		buf_free(&tmp);
		free(dir);
		return cli_fail("--out \"%s\": the name is too long", out);
	}
	char *path = buf_take(&tmp);
	catch_signals(true);
	int fd = mkstemp(path);
	if (fd < 0) {
		int e = errno;
		catch_signals(false);
		int rc = cli_fail("cannot write in %s: %s", dir, strerror(e));
		free(path);
		free(dir);
		return rc;
	}
	temp_path = path;
	/* mkstemp makes the file 0600; give it the mode a new file would get */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);

	char err[1024] = "";
	bool ok;
	if (csv) {
		ok = write_all(fd, csv->data ? csv->data : "", csv->len) && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		if (!ok)
			fmt_into(err, sizeof err, "cannot write %s: %s", out, strerror(errno));
	} else {
		close(fd);
		char why[512];
		if (!(ok = agg_export_xlsx(db, t, path, why, sizeof why) == 0))
			fmt_into(err, sizeof err, "%s: %s", out, why);
		else if (!(ok = sync_path(path, false)))
			fmt_into(err, sizeof err, "cannot write %s: %s", out, strerror(errno));
	}
	if (ok && !(ok = rename(path, out) == 0))
		fmt_into(err, sizeof err, "cannot replace %s: %s", out, strerror(errno));
	if (ok)
		sync_path(dir, true);   /* the rename itself; too late to fail over */
	else
		unlink(path);
	temp_path = NULL;
	catch_signals(false);
	free(path);
	free(dir);
	return ok ? CLI_OK : cli_fail("%s", err);
}

int cmd_export(const cli *c, int argc, char **argv)
{
	const char *format = NULL, *table = NULL, *out = NULL;
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "table", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (cli_wants_help(argc, argv)) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (o) {
		case 'f': format = optarg; break;
		case 't': table = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc - 1 || !format || !out || !*out)
		return cli_usage(usage);
	bool xlsx = str_eq(format, "xlsx");
	if (!xlsx && !str_eq(format, "csv"))
		return cli_fail("unknown format \"%s\" (use xlsx or csv)", format);
	if (xlsx && table)
		return cli_fail("--table chooses a CSV table; an xlsx workbook holds them all");
	if (!table)
		table = "grades";
	if (!str_eq(table, "grades") && !str_eq(table, "rectification"))
		return cli_fail("unknown table \"%s\" (use grades or rectification)", table);
	const char *round = argv[optind];

	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	agg_tally t;
	char err[1024];
	if (agg_tally_load(db, round, &t, err, sizeof err) != 0) {
		db_close(db);
		return cli_fail("%s", err);
	}
	int rc = CLI_OK;
	buf csv;
	buf_init(&csv, 256 << 20);
	if (!xlsx && agg_export_csv(db, &t, table, &csv, err, sizeof err) != 0)
		rc = cli_fail("%s", err);
	if (rc == CLI_OK)
		rc = write_file(db, &t, xlsx ? NULL : &csv, out);
	if (rc == CLI_OK)
		printf("round %s exported to %s\n", round, out);
	buf_free(&csv);
	agg_tally_free(&t);
	db_close(db);
	return rc;
}
