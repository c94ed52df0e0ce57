/* csv.c - see csv.h. */
#include "csv.h"

#include <string.h>

#include <stdlib.h>

#include "buf.h"
#include "fmt.h"
#include "str.h"

void csv_open(csv_reader *r, FILE *f)
{
	r->f = f;
	r->line = 1;
	r->started = 0;
	r->npending = 0;
}

static int next(csv_reader *r)
{
	return r->npending ? r->pending[--r->npending] : getc(r->f);
}

static void unget(csv_reader *r, int c)
{
	if (c != EOF)
		r->pending[r->npending++] = c;
}

/* Skip a UTF-8 byte-order mark (Excel writes one). */
static void skip_bom(csv_reader *r)
{
	int b[3];
	int n = 0;
	static const int bom[3] = { 0xef, 0xbb, 0xbf };
	while (n < 3 && (b[n] = next(r)) == bom[n])
		n++;
	if (n == 3)
		return;
	for (int i = n; i >= 0; i--)
		unget(r, b[i]);
}

void csv_row_free(csv_row *row)
{
	for (size_t i = 0; i < row->n; i++)
		free(row->fields[i]);
	row->n = 0;
}

static int fail(csv_row *row, char *err, size_t errsize, int line, const char *why)
{
	csv_row_free(row);
	fmt_into(err, errsize, "line %d: %s", line, why);
	return -1;
}

/* Finish the current field: check it and move it into the row. */
static int end_field(csv_row *row, buf *field, char *err, size_t errsize)
{
	if (field->overflow)
		return fail(row, err, errsize, row->line, "a field is longer than 1024 bytes");
	if (!utf8_valid_text(buf_str(field), field->len))
		return fail(row, err, errsize, row->line, "the text is not valid UTF-8 (save the file as UTF-8)");
	if (row->n == CSV_MAX_FIELDS)
		return fail(row, err, errsize, row->line, "too many fields");
	row->fields[row->n++] = buf_take(field);
	buf_init(field, CSV_MAX_FIELD);
	return 0;
}

int csv_next(csv_reader *r, csv_row *row, char *err, size_t errsize)
{
	memset(row, 0, sizeof *row);
	if (!r->started) {
		r->started = 1;
		skip_bom(r);
	}
	buf field;
	buf_init(&field, CSV_MAX_FIELD);
	int c, quoted = 0, in_quotes = 0, any = 0;
	row->line = r->line;
	for (;;) {
		c = next(r);
		if (in_quotes) {
			if (c == EOF) {
				buf_free(&field);
				return fail(row, err, errsize, row->line, "a quoted field is not closed");
			}
			if (c == '"') {
				int d = next(r);
				if (d == '"') {
					buf_putc(&field, '"');
					continue;
				}
				unget(r, d);
				in_quotes = 0;
				continue;
			}
			if (c == '\n')
				r->line++;
			buf_putc(&field, (char)c);
			continue;
		}
		if (c == '"' && field.len == 0 && !quoted) {
			quoted = in_quotes = any = 1;
			continue;
		}
		if (c == ',') {
			if (end_field(row, &field, err, errsize) < 0) {
				buf_free(&field);
				return -1;
			}
			quoted = 0;
			any = 1;
			continue;
		}
		if (c == '\r') {
			int d = next(r);
			if (d != '\n')
				unget(r, d);
			c = '\n';
		}
		if (c == '\n' || c == EOF) {
			if (c == '\n')
				r->line++;
			if (!any && field.len == 0) {
				if (c == EOF) {
					buf_free(&field);
					return 0;
				}
				row->line = r->line;
				continue; /* blank line */
			}
			if (end_field(row, &field, err, errsize) < 0) {
				buf_free(&field);
				return -1;
			}
			buf_free(&field);
			return 1;
		}
		if (quoted) {
			buf_free(&field);
			return fail(row, err, errsize, row->line, "text after a closing quote (write \"\" for a quote inside a quoted field)");
		}
		any = 1;
		buf_putc(&field, (char)c);
	}
}
