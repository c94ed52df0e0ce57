/* ini.h - reading "[section name]" / "key = value" text files.
 *
 * The syntax of pingyi's data files (rules files; see docs/rules.md): UTF-8
 * with an optional BOM, LF or CRLF, '#' comment lines, blank lines, section
 * headers "[kind]" or "[kind name]", and "key = value" lines with white
 * space trimmed around key and value. What sections and keys mean is the
 * caller's: it gets one callback per header and per pair, with the line
 * number, and fills err with "why" (the reader adds "file:line: "). */
#ifndef PINGYI_INI_H
#define PINGYI_INI_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ini_item {
	int line;
	const char *kind;   /* of the current section, "" before the first */
	const char *name;   /* of the current section ("" when none) */
	const char *key;    /* NULL for a section header */
	const char *value;  /* NULL for a section header */
} ini_item;

/* Return false with why filled to stop reading. */
typedef bool (*ini_handler)(void *ctx, const ini_item *item, char *why, size_t whysize);

/* Read text, calling handler for each header and pair. Returns 0, or -1 with
 * err set to "filename:line: why" (for the reader's own complaints too: a
 * line without '=', a pair before any section, bad UTF-8, a bad header). */
int ini_parse(const char *text, const char *filename, ini_handler handler, void *ctx,
	char *err, size_t errsize);

/* Read a whole text file (at most max bytes) into a new string the caller
 * frees; NULL with err ("PATH: why", or "PATH:LINE: why" for a NUL byte)
 * on failure. */
char *ini_read_file(const char *path, size_t max, char *err, size_t errsize);

#endif
