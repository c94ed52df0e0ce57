/* fmt.h - the one formatter, with escaping conversions for every channel.
 *
 * Output for a browser, a URL, a JSON document or a CSV file goes through
 * these functions, so that forgetting to escape needs a visible mistake
 * (a bare %s) rather than a forgotten call.
 *
 *   %h   char*  HTML text or attribute: escapes & < > " '
 *   %U   char*  URL component: everything but A-Z a-z 0-9 - . _ ~ is %XX
 *   %J   char*  JSON string, with the surrounding quotes
 *   %C   char*  CSV cell: quoted when needed, quotes doubled, and a leading
 *               = + - @ TAB or CR neutralised with a ' (formula injection)
 *   %s   char*  trusted literal, copied as is (never for outside input)
 *   %d %u %x    int / unsigned;  %ld %lu  long;  %lld %llu  long long;
 *   %zu         size_t
 *   %f %.Nf     double (N from 0 to 9)
 *   %%          a percent sign
 *
 * A NULL string argument prints as empty. An unknown conversion aborts:
 * it is a programming error, not an input error. */
#ifndef PINGYI_FMT_H
#define PINGYI_FMT_H

#include <stdarg.h>
#include <stdbool.h>

#include "buf.h"

/* Append formatted text to b. Returns false if b's limit was reached (the
 * output is then truncated at a conversion boundary and b->overflow set). */
bool buf_fmt(buf *b, const char *fmt, ...);
bool buf_vfmt(buf *b, const char *fmt, va_list ap);

/* Format into a new string the caller frees (at most 1 MiB). */
char *fmt_alloc(const char *fmt, ...);

/* Format into a fixed array, truncating; always NUL-terminates. Meant for
 * error messages filled in for a caller (the "err" buffers of library
 * functions). */
void fmt_into(char *dst, size_t size, const char *fmt, ...);

#endif
