/* mem.h - allocation that cannot fail.
 *
 * Out-of-memory aborts the process: a daemon that cannot allocate a few
 * bytes cannot do anything useful, and aborting keeps ordinary code free of
 * NULL checks. Everything here returns memory the caller owns and frees. */
#ifndef PINGYI_MEM_H
#define PINGYI_MEM_H

#include <stddef.h>
#include <stdlib.h> /* free */

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
