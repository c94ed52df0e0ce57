/* str.h - bounded number parsing, UTF-8 checks and small string helpers.
 *
 * These replace atoi/sscanf/strcpy: every parse states its range, every
 * copy its size, and each reports failure instead of guessing. */
#ifndef PINGYI_STR_H
#define PINGYI_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a whole decimal integer (optional sign, no spaces, nothing after)
 * within [min, max]. Returns false and leaves *out alone otherwise. */
bool str_to_int(const char *s, int min, int max, int *out);
bool str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parse a whole finite decimal number within [min, max]. */
bool str_to_double(const char *s, double min, double max, double *out);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, no
 * code points above U+10FFFF) and contains no NUL or C0 control character
 * other than TAB, LF and CR. */
bool utf8_valid_text(const char *s, size_t n);
/* Number of code points in valid UTF-8 text s. */
size_t utf8_length(const char *s);

/* Columns valid UTF-8 text s takes in a terminal: CJK and full-width
 * characters count two. */
size_t utf8_width(const char *s);

/* Copy src into dst[size], truncating; always NUL-terminates when size > 0.
 * Returns false when src did not fit. */
bool str_copy(char *dst, size_t size, const char *src);
bool str_starts(const char *s, const char *prefix);
bool str_eq(const char *a, const char *b);
/* Remove leading and trailing ASCII white space in place; returns s. */
char *str_trim(char *s);

#endif
