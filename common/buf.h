/* buf.h - growable byte buffers with a hard upper bound.
 *
 * Every buffer is created with the largest size it may reach (like curl's
 * dynbuf), so input that grows without limit is refused where it enters
 * rather than exhausting memory. The content is always NUL-terminated.
 * Formatted output with escaping lives in fmt.h. */
#ifndef PINGYI_BUF_H
#define PINGYI_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;   /* allocated bytes */
	size_t max;   /* len never exceeds this */
	bool overflow; /* set once an append was refused */
} buf;

/* Initialise an empty buffer that may hold at most max bytes. */
void buf_init(buf *b, size_t max);
/* Release the memory; the buffer can be initialised again. */
void buf_free(buf *b);
/* Empty the buffer, keeping its memory and limit. */
void buf_reset(buf *b);
/* Append n bytes. Returns false (and sets b->overflow, appending nothing)
 * when the result would exceed the limit. */
bool buf_append(buf *b, const void *p, size_t n);
bool buf_puts(buf *b, const char *s);
bool buf_putc(buf *b, char c);
/* The content as a C string; "" for an empty buffer. Owned by the buffer. */
const char *buf_str(const buf *b);
/* Hand the content to the caller (who frees it) and empty the buffer. */
char *buf_take(buf *b);

#endif
