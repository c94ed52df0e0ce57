/* buf.c - bounded growable buffers; see buf.h. */
#include "buf.h"

#include <string.h>

#include "mem.h"

void buf_init(buf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

void buf_free(buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

void buf_reset(buf *b)
{
	b->len = 0;
	b->overflow = false;
	if (b->data)
		b->data[0] = '\0';
}

bool buf_append(buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len) {
		b->overflow = true;
		return false;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

bool buf_puts(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }
bool buf_putc(buf *b, char c) { return buf_append(b, &c, 1); }
const char *buf_str(const buf *b) { return b->data ? b->data : ""; }

char *buf_take(buf *b)
{
	char *s = b->data ? b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	b->overflow = false;
	return s;
}
