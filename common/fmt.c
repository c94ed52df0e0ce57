/* fmt.c - the escaping formatter; the contract is in fmt.h. */
#include "fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static bool put_html(buf *b, const char *s)
{
	for (; *s; s++) {
		const char *e = NULL;
		switch (*s) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		}
		if (!(e ? buf_puts(b, e) : buf_putc(b, *s)))
			return false;
	}
	return true;
}

static bool put_url(buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
		if (!(plain ? buf_putc(b, (char)c) : buf_append(b, esc, 3)))
			return false;
	}
	return true;
}

static bool put_json(buf *b, const char *s)
{
	if (!buf_putc(b, '"'))
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		const char *e = NULL;
		switch (c) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(esc, sizeof esc, "\\u%04x", c);
				e = esc;
			}
		}
		if (!(e ? buf_puts(b, e) : buf_putc(b, (char)c)))
			return false;
	}
	return buf_putc(b, '"');
}

static bool put_csv(buf *b, const char *s)
{
	bool formula = strchr("=+-@\t\r", s[0]) && s[0];
	bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
	if (quote && !buf_putc(b, '"'))
		return false;
	if (formula && !buf_putc(b, '\''))
		return false;
	for (; *s; s++)
		if (!(*s == '"' ? buf_puts(b, "\"\"") : buf_putc(b, *s)))
			return false;
	return !quote || buf_putc(b, '"');
}

/* Formats one numeric conversion with snprintf; spec is a complete,
 * known-good printf conversion such as "%lld". */
#define PUT_NUM(spec, type) do { \
		char num[64]; \
		snprintf(num, sizeof num, spec, va_arg(ap, type)); \
		ok = buf_puts(b, num); \
	} while (0)

bool buf_vfmt(buf *b, const char *fmt, va_list ap)
{
	bool ok = true;
	for (const char *p = fmt; *p && ok; p++) {
		if (*p != '%') {
			const char *q = strchr(p, '%');
			size_t n = q ? (size_t)(q - p) : strlen(p);
			ok = buf_append(b, p, n);
			p += n - 1;
			continue;
		}
		p++;
		size_t mark = b->len;   /* a conversion goes in whole or not at all */
		if (*p == '.' && p[1] >= '0' && p[1] <= '9' && p[2] == 'f') {
			char num[64];
			snprintf(num, sizeof num, "%.*f", p[1] - '0', va_arg(ap, double));
			ok = buf_puts(b, num);
			p += 2;
			goto next;
		}
		const char *s;
		switch (*p) {
		case '%': ok = buf_putc(b, '%'); break;
		case 's': s = va_arg(ap, const char *); ok = buf_puts(b, s ? s : ""); break;
		case 'h': s = va_arg(ap, const char *); ok = put_html(b, s ? s : ""); break;
		case 'U': s = va_arg(ap, const char *); ok = put_url(b, s ? s : ""); break;
		case 'J': s = va_arg(ap, const char *); ok = put_json(b, s ? s : ""); break;
		case 'C': s = va_arg(ap, const char *); ok = put_csv(b, s ? s : ""); break;
		case 'd': PUT_NUM("%d", int); break;
		case 'u': PUT_NUM("%u", unsigned); break;
		case 'x': PUT_NUM("%x", unsigned); break;
		case 'f': PUT_NUM("%f", double); break;
		case 'z':
			if (p[1] != 'u')
				goto bad;
			p++;
			PUT_NUM("%zu", size_t);
			break;
		case 'l':
			if (p[1] == 'd') { p++; PUT_NUM("%ld", long); break; }
			if (p[1] == 'u') { p++; PUT_NUM("%lu", unsigned long); break; }
			if (p[1] == 'l' && p[2] == 'd') { p += 2; PUT_NUM("%lld", long long); break; }
			if (p[1] == 'l' && p[2] == 'u') { p += 2; PUT_NUM("%llu", unsigned long long); break; }
			goto bad;
		default:
			goto bad;
		}
next:
		if (!ok && b->data) {
			b->len = mark;
			b->data[mark] = '\0';
		}
	}
	return ok;
bad:
	fprintf(stderr, "fatal: bad conversion in format \"%s\"\n", fmt);
	abort();
}

bool buf_fmt(buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = buf_vfmt(b, fmt, ap);
	va_end(ap);
	return ok;
}

char *fmt_alloc(const char *fmt, ...)
{
	buf b;
	buf_init(&b, 1 << 20);
	va_list ap;
	va_start(ap, fmt);
	buf_vfmt(&b, fmt, ap);
	va_end(ap);
	return buf_take(&b);
}

void fmt_into(char *dst, size_t size, const char *fmt, ...)
{
	buf b;
	buf_init(&b, 4096);
	va_list ap;
	va_start(ap, fmt);
	buf_vfmt(&b, fmt, ap);
	va_end(ap);
	snprintf(dst, size, "%s", buf_str(&b));
	buf_free(&b);
}
