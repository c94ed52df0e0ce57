/* setup.c - pingyi init: create the database and its server secret. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/rnd.h"
#include "common/schema.h"
#include "common/str.h"

static const char usage[] =
	"usage: pingyi [--db PATH] init [--base-url URL]\n"
	"\n"
	"Create the database (and its folder) if it does not exist, upgrade it if it\n"
	"was made by an older pingyi, and make the server secret. Running it again\n"
	"keeps the secret and the data.\n"
	"\n"
	"  --base-url URL   where the collector is reached from phones, e.g.\n"
	"                   https://pingyi.example.edu.cn (default http://127.0.0.1:8080);\n"
	"                   QR codes point there\n";

/* Make the folder a path lives in (one level is enough for var/). */
static int make_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	char *dir = xstrndup(path, (size_t)(slash - path));
	int rc = mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
	if (rc)
		cli_fail("cannot create folder %s: %s", dir, strerror(errno));
	free(dir);
	return rc;
}

static bool valid_base_url(const char *u)
{
	return (str_starts(u, "http://") || str_starts(u, "https://")) && strlen(u) < 200 &&
		!strpbrk(u, " \t\r\n\"'<>?#") && u[strlen(u) - 1] != '/';
}

int cmd_init(const cli *c, int argc, char **argv)
{
	const char *base_url = NULL;
	static const struct option opts[] = {
		{ "base-url", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (o == 'b')
			base_url = optarg;
		else if (o == 'h') {
			fputs(usage, stdout);
			return CLI_OK;
		} else
			return cli_usage(usage);
	}
	if (optind < argc)
		return cli_usage(usage);
	if (base_url && !valid_base_url(base_url))
		return cli_fail("bad --base-url \"%s\": give the scheme and host, without a trailing / "
			"(e.g. https://pingyi.example.edu.cn)", base_url);
	if (make_parent(c->db_path) != 0)
		return CLI_FAIL;
	sqlite3 *db = cli_open(c, true);
	if (!db)
		return CLI_FAIL;
	unsigned char key[32];
	char hex[65];
	rnd_bytes(key, sizeof key);
	sodium_bin2hex(hex, sizeof hex, key, sizeof key);
	sodium_memzero(key, sizeof key);
	int rc = db_exec(db, "INSERT INTO meta(key, value) VALUES ('secret', ?) ON CONFLICT DO NOTHING", "t", hex);
	sodium_memzero(hex, sizeof hex);
	if (rc == SQLITE_OK)
		rc = db_exec(db, "INSERT INTO meta(key, value) VALUES ('base_url', coalesce(?, 'http://127.0.0.1:8080')) "
			"ON CONFLICT DO UPDATE SET value = coalesce(?, value)", "tt", base_url, base_url);
	if (rc != SQLITE_OK) {
		cli_fail("cannot write to %s: %s", c->db_path, sqlite3_errmsg(db));
		db_close(db);
		return CLI_FAIL;
	}
	char *url = cli_base_url(db);
	printf("database %s ready (schema version %d); forms will be served at %s\n",
		c->db_path, schema_version(), url);
	free(url);
	db_close(db);
	return CLI_OK;
}
