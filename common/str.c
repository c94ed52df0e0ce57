/* str.c - see str.h. */
#include "str.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s || (s[0] != '-' && s[0] != '+' && (s[0] < '0' || s[0] > '9')))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool str_to_int(const char *s, int min, int max, int *out)
{
	int64_t v;
	if (!str_to_i64(s, min, max, &v))
		return false;
	*out = (int)v;
	return true;
}

bool str_to_double(const char *s, double min, double max, double *out)
{
	/* Plain decimal only: strtod would also take hex, "inf" and leading space. */
	if (!s || !*s || s[strspn(s, "0123456789+-.eE")] != '\0')
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool utf8_valid_text(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		int extra;
		unsigned cp, min;
		if (c >= 0xc2 && c <= 0xdf) { extra = 1; cp = c & 0x1f; min = 0x80; }
		else if (c >= 0xe0 && c <= 0xef) { extra = 2; cp = c & 0x0f; min = 0x800; }
		else if (c >= 0xf0 && c <= 0xf4) { extra = 3; cp = c & 0x07; min = 0x10000; }
		else return false;
		if (n - i <= (size_t)extra)
			return false;
		for (int k = 1; k <= extra; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += (size_t)extra + 1;
	}
	return true;
}

size_t utf8_length(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool is_wide(unsigned cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
		(cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
		(cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
		(cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
}

size_t utf8_width(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t w = 0;
	while (*s) {
		unsigned cp = *s;
		int extra = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
		cp &= extra ? 0x3fu >> extra : 0x7fu;
		for (s++; extra-- > 0 && (*s & 0xc0) == 0x80; s++)
			cp = (cp << 6) | (*s & 0x3f);
		w += is_wide(cp) ? 2 : 1;
	}
	return w;
}

bool str_copy(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return false;
	size_t n = strlen(src);
	bool fits = n < size;
	if (!fits)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

bool str_starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }
bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

char *str_trim(char *s)
{
	size_t n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	size_t k = strspn(s, " \t\r\n");
	memmove(s, s + k, n - k + 1);
	return s;
}
