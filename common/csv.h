/* csv.h - reading RFC 4180 CSV files (UTF-8, optional BOM, CRLF or LF).
 *
 * Used by imports; writing CSV goes through fmt.h's %C conversion. Fields
 * may be quoted and contain commas, quotes ("") and newlines. Each row
 * remembers the line it started on, so callers can name it in errors. */
#ifndef PINGYI_CSV_H
#define PINGYI_CSV_H

#include <stddef.h>
#include <stdio.h>

enum { CSV_MAX_FIELDS = 32, CSV_MAX_FIELD = 1024 };

typedef struct csv_row {
	char *fields[CSV_MAX_FIELDS]; /* owned by the row; freed by csv_row_free */
	size_t n;
	int line;                     /* 1-based line the row starts on */
} csv_row;

typedef struct csv_reader {
	FILE *f;
	int line;
	int started;
	int pending[4]; /* bytes pushed back, read before f */
	int npending;
} csv_reader;

void csv_open(csv_reader *r, FILE *f);
/* Read the next row: 1 with a row, 0 at end of file, -1 with err filled
 * ("line N: why") on malformed input. Blank lines are skipped. */
int csv_next(csv_reader *r, csv_row *row, char *err, size_t errsize);
void csv_row_free(csv_row *row);

#endif
