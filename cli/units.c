/* units.c - pingyi units import / list: the organisation tree.
 *
 * An import is all or nothing: every row is checked, the whole file goes in
 * one transaction, and the first problem is reported as FILE:LINE: why with
 * nothing changed. Re-importing updates units in place (their tokens, and so
 * their printed QR codes, stay the same); units missing from a later file
 * are kept. CSV reading is common/csv.c. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/csv.h"
#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/rnd.h"
#include "common/str.h"

static const char usage_import[] =
	"usage: pingyi [--db PATH] units import FILE.csv\n"
	"\n"
	"Add or update units from a UTF-8 CSV file (Excel's \"CSV UTF-8\" works) whose\n"
	"first row is the header  id,parent,kind,name_zh,name_en\n"
	"  id       your own code for the unit: letters, digits, - _ . (up to 64)\n"
	"  parent   the id of the unit above it, empty for the top\n"
	"  kind     committee | general_branch | branch | department | window\n"
	"  name_zh  the Chinese name; name_en  the English name (up to 100 characters)\n"
	"A unit keeps its QR token when it is imported again.\n";

static const char usage_list[] =
	"usage: pingyi [--db PATH] units list [--format table|csv]\n";

static const char *const kinds[] = { "committee", "general_branch", "branch", "department", "window" };

static bool valid_unit_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("-_.", id[i]))
			return false;
	return true;
}

static bool valid_kind(const char *k)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(k, kinds[i]) == 0)
			return true;
	return false;
}

/* Check one data row; on a problem fill why and return false. */
static bool check_row(const csv_row *row, char *why, size_t n)
{
	if (row->n != 5) {
		fmt_into(why, n, "expected 5 fields (id,parent,kind,name_zh,name_en), found %zu", row->n);
		return false;
	}
	const char *id = row->fields[0], *parent = row->fields[1], *kind = row->fields[2];
	if (!valid_unit_id(id)) {
		fmt_into(why, n, "bad id \"%s\": use up to 64 letters, digits, - _ . (not starting with . or -)", id);
		return false;
	}
	if (*parent && !valid_unit_id(parent)) {
		fmt_into(why, n, "bad parent id \"%s\"", parent);
		return false;
	}
	if (strcmp(id, parent) == 0) {
		fmt_into(why, n, "unit \"%s\" cannot be its own parent", id);
		return false;
	}
	if (!valid_kind(kind)) {
		fmt_into(why, n, "unknown kind \"%s\" (use committee, general_branch, branch, department or window)", kind);
		return false;
	}
	for (int f = 3; f <= 4; f++) {
		size_t len = utf8_length(row->fields[f]);
		if (len == 0 || len > 100 || strpbrk(row->fields[f], "\r\n\t")) {
			fmt_into(why, n, "%s must be 1 to 100 characters on one line", f == 3 ? "name_zh" : "name_en");
			return false;
		}
	}
	return true;
}

static bool header_ok(const csv_row *row)
{
	static const char *const want[] = { "id", "parent", "kind", "name_zh", "name_en" };
	if (row->n != 5)
		return false;
	for (int i = 0; i < 5; i++) {
		char h[32];
		str_copy(h, sizeof h, row->fields[i]);
		if (strcasecmp(str_trim(h), want[i]) != 0)
			return false;
	}
	return true;
}

/* Insert or update one unit; a new unit gets a fresh random token. */
static int upsert(sqlite3 *db, const csv_row *row, int position, bool *is_new)
{
	char token[9];
	for (;;) {
		rnd_token(token, 8);
		if (db_int(db, 0, "SELECT count(*) FROM units WHERE token = ?", "t", token) == 0)
			break;
	}
	*is_new = db_int(db, 0, "SELECT count(*) FROM units WHERE id = ?", "t", row->fields[0]) == 0;
	return db_exec(db, "INSERT INTO units(id, parent, kind, name_zh, name_en, token, position) "
		"VALUES (?1, nullif(?2, ''), ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
		"parent = nullif(?2, ''), kind = ?3, name_zh = ?4, name_en = ?5, position = ?7",
		"ttttttI", row->fields[0], row->fields[1], row->fields[2], row->fields[3], row->fields[4],
		token, (int64_t)position);
}

typedef struct seen {
	char **ids;
	int *lines;
	size_t n;
} seen;

static int line_of(const seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return s->lines[i];
	return 0;
}

static void seen_free(seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->lines);
}

/* After the rows are in: every parent exists and no unit is its own ancestor.
 * The unit blamed is one from this file (the first by line), so the message
 * can name the line to fix. */
static int check_tree(sqlite3 *db, const seen *s, char *why, size_t n, char *bad_id, size_t bad_n)
{
	char *missing = db_text(db, "SELECT u.id || char(9) || u.parent FROM units u "
		"WHERE u.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM units p WHERE p.id = u.parent) "
		"ORDER BY u.position LIMIT 1", NULL);
	if (missing) {
		char *tab = strchr(missing, '\t');
		*tab = '\0';
		str_copy(bad_id, bad_n, missing);
		fmt_into(why, n, "parent \"%s\" of unit \"%s\" is not in the file or the database", tab + 1, missing);
		free(missing);
		return -1;
	}
	sqlite3_stmt *st = db_prepare(db, "WITH RECURSIVE up(start, id, depth) AS ("
		"  SELECT id, parent, 1 FROM units WHERE parent IS NOT NULL"
		"  UNION ALL SELECT up.start, u.parent, up.depth + 1 FROM up JOIN units u ON u.id = up.id"
		"  WHERE u.parent IS NOT NULL AND up.depth < 10000 AND up.id <> up.start)"
		" SELECT DISTINCT start FROM up WHERE id = start", NULL);
	int best = 0;
	bad_id[0] = '\0';
	while (db_step(st) == SQLITE_ROW) {
		const char *id = db_col_text(st, 0);
		int line = line_of(s, id);
		if (!bad_id[0] || (line && (!best || line < best))) {
			str_copy(bad_id, bad_n, id);
			best = line;
		}
	}
	db_finalize(st);
	if (bad_id[0]) {
		fmt_into(why, n, "unit \"%s\" would be its own ancestor (the parents form a loop)", bad_id);
		return -1;
	}
	return 0;
}

static int import_rows(sqlite3 *db, const char *path, FILE *f, seen *s, int *added, int *updated)
{
	csv_reader r;
	csv_row row;
	char err[512];
	csv_open(&r, f);
	int got = csv_next(&r, &row, err, sizeof err);
	if (got <= 0)
		return got < 0 ? cli_fail("%s:%s", path, err + 5)
			: cli_fail("%s:1: the file is empty (expected the header id,parent,kind,name_zh,name_en)", path);
	if (!header_ok(&row)) {
		csv_row_free(&row);
		return cli_fail("%s:%d: the first row must be the header id,parent,kind,name_zh,name_en", path, row.line);
	}
	csv_row_free(&row);
	int base = (int)db_int(db, 0, "SELECT coalesce(max(position), 0) FROM units", NULL);
	while ((got = csv_next(&r, &row, err, sizeof err)) == 1) {
		char why[512];
		int rc = CLI_OK;
		if (!check_row(&row, why, sizeof why))
			rc = cli_fail("%s:%d: %s", path, row.line, why);
		else if (line_of(s, row.fields[0]))
			rc = cli_fail("%s:%d: unit \"%s\" appears twice (first on line %d)", path, row.line,
				row.fields[0], line_of(s, row.fields[0]));
		bool is_new = false;
		if (rc == CLI_OK && upsert(db, &row, base + row.line, &is_new) != SQLITE_OK)
			rc = cli_fail("%s:%d: cannot store unit \"%s\": %s", path, row.line, row.fields[0], sqlite3_errmsg(db));
		if (rc == CLI_OK) {
			s->ids = xrealloc(s->ids, (s->n + 1) * sizeof *s->ids);
			s->lines = xrealloc(s->lines, (s->n + 1) * sizeof *s->lines);
			s->ids[s->n] = xstrdup(row.fields[0]);
			s->lines[s->n++] = row.line;
			*(is_new ? added : updated) += 1;
		}
		csv_row_free(&row);
		if (rc != CLI_OK)
			return rc;
	}
	if (got < 0)
		return cli_fail("%s:%s", path, err + 5);
	return CLI_OK;
}

static int import(const cli *c, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return cli_fail("cannot open %s: %s", path, strerror(errno));
	sqlite3 *db = cli_open(c, false);
	if (!db) {
		fclose(f);
		return CLI_FAIL;
	}
	int added = 0, updated = 0;
	seen s = { 0 };
	int rc = db_begin(db) == SQLITE_OK ? CLI_OK : cli_fail("the database is busy: %s", sqlite3_errmsg(db));
	if (rc == CLI_OK) {
		db_exec(db, "PRAGMA defer_foreign_keys = ON", NULL);
		rc = import_rows(db, path, f, &s, &added, &updated);
	}
	char why[512], bad[72];
	if (rc == CLI_OK && check_tree(db, &s, why, sizeof why, bad, sizeof bad) != 0)
		rc = line_of(&s, bad) ? cli_fail("%s:%d: %s", path, line_of(&s, bad), why) : cli_fail("%s: %s", path, why);
	if (rc == CLI_OK && s.n == 0)
		rc = cli_fail("%s:2: no units after the header", path);
	if (rc == CLI_OK && db_commit(db) != SQLITE_OK)
		rc = cli_fail("cannot save the import: %s", sqlite3_errmsg(db));
	if (rc != CLI_OK) {
		db_rollback(db);
		fprintf(stderr, "pingyi: nothing was imported\n");
	} else {
		printf("imported %zu units from %s (%d new, %d updated)\n", s.n, path, added, updated);
	}
	seen_free(&s);
	fclose(f);
	db_close(db);
	return rc;
}

static int list(const cli *c, int argc, char **argv)
{
	bool csv = false;
	if (argc == 3 && strcmp(argv[1], "--format") == 0 && (strcmp(argv[2], "csv") == 0 || strcmp(argv[2], "table") == 0))
		csv = strcmp(argv[2], "csv") == 0;
	else if (argc != 1)
		return cli_usage(usage_list);
	sqlite3 *db = cli_open(c, false);
	if (!db)
		return CLI_FAIL;
	char *base = cli_base_url(db);
	sqlite3_stmt *st = db_prepare(db, "WITH RECURSIVE tree(id, depth, path) AS ("
		"  SELECT id, 0, printf('%08d', position) FROM units WHERE parent IS NULL"
		"  UNION ALL SELECT u.id, t.depth + 1, t.path || '/' || printf('%08d', u.position)"
		"  FROM units u JOIN tree t ON u.parent = t.id)"
		" SELECT u.id, coalesce(u.parent, ''), u.kind, u.name_zh, u.name_en, u.token, t.depth,"
		"  (SELECT r.id FROM round_units ru JOIN rounds r ON r.id = ru.round"
		"   WHERE ru.unit = u.id AND r.state = 'open')"
		" FROM tree t JOIN units u ON u.id = t.id ORDER BY t.path", NULL);
	buf out;
	buf_init(&out, 64 << 20);
	if (csv)
		buf_puts(&out, "\xEF\xBB\xBFid,parent,kind,name_zh,name_en,token,url\r\n");
	while (db_step(st) == SQLITE_ROW) {
		const char *id = db_col_text(st, 0), *token = db_col_text(st, 5);
		if (csv) {
			buf_fmt(&out, "%C,%C,%C,%C,%C,%C,%C/u/%C\r\n", id, db_col_text(st, 1), db_col_text(st, 2),
				db_col_text(st, 3), db_col_text(st, 4), token, base, token);
			continue;
		}
		for (int d = 0; d < sqlite3_column_int(st, 6); d++)
			buf_puts(&out, "  ");
		/* A poster for a unit in no open round leads to "no appraisal is
		 * open": say so beside its URL. */
		bool open = sqlite3_column_type(st, 7) != SQLITE_NULL;
		buf_fmt(&out, "%s  %s  [%s, %s]  %s/u/%s  %s%s\n", db_col_text(st, 3), db_col_text(st, 4), id,
			db_col_text(st, 2), base, token, open ? "open round: " : "(in no open round)",
			open ? db_col_text(st, 7) : "");
	}
	db_finalize(st);
	fputs(buf_str(&out), stdout);
	buf_free(&out);
	free(base);
	db_close(db);
	return CLI_OK;
}

int cmd_units(const cli *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "import") == 0) {
		if (cli_wants_help(argc - 1, argv + 1)) {
			fputs(usage_import, stdout);
			return CLI_OK;
		}
		return argc == 3 ? import(c, argv[2]) : cli_usage(usage_import);
	}
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		if (cli_wants_help(argc - 1, argv + 1)) {
			fputs(usage_list, stdout);
			return CLI_OK;
		}
		return list(c, argc - 1, argv + 1);
	}
	if (cli_wants_help(argc, argv)) {
		printf("%s\n%s", usage_import, usage_list);
		return CLI_OK;
	}
	fputs(usage_import, stderr);
	return cli_usage(usage_list);
}
