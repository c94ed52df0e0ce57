/* cli.h - the pingyi command line's parts.
 *
 * main.c dispatches "pingyi [--db PATH] COMMAND ..." to one function per
 * command; each file holds the commands of one subject:
 *   setup.c    init
 *   units.c    units import, units list
 *   rounds.c   round create/open/close/list, tally, recount, ledger verify/head
 *   qrcodes.c  qr
 *   codes.c    codes issue
 *   complaints.c  complaints sync/list/take/resolve/times, review add, rectify add
 *   export.c   export (XLSX, CSV)
 * The work itself is in the libraries (aggregator/, forms/, qr/, common/);
 * these files parse options, call them and print. */
#ifndef PINGYI_CLI_H
#define PINGYI_CLI_H

#include <sqlite3.h>
#include <stdbool.h>

/* Exit codes: 0 done, 1 failed, 2 bad usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli {
	const char *db_path;
} cli;

/* Open the database read-write (creating it only for init); on failure
 * prints the reason and returns NULL. */
sqlite3 *cli_open(const cli *c, bool create);
/* Print "pingyi: message" to stderr. Returns CLI_FAIL. */
int cli_fail(const char *fmt, ...);
/* Print the command's usage to stderr. Returns CLI_USAGE. */
int cli_usage(const char *usage);
/* True when argv holds --help or -h (after the command name). */
bool cli_wants_help(int argc, char **argv);
/* The base URL printed QR codes point to (meta base_url); caller frees. */
char *cli_base_url(sqlite3 *db);

int cmd_init(const cli *c, int argc, char **argv);
int cmd_units(const cli *c, int argc, char **argv);
int cmd_round(const cli *c, int argc, char **argv);
int cmd_tally(const cli *c, int argc, char **argv);
int cmd_recount(const cli *c, int argc, char **argv);
int cmd_ledger(const cli *c, int argc, char **argv);
int cmd_qr(const cli *c, int argc, char **argv);
int cmd_codes(const cli *c, int argc, char **argv);
int cmd_complaints(const cli *c, int argc, char **argv);
int cmd_review(const cli *c, int argc, char **argv);
int cmd_rectify(const cli *c, int argc, char **argv);
int cmd_export(const cli *c, int argc, char **argv);

#endif
