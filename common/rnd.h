/* rnd.h - random identifiers, from libsodium's CSPRNG.
 *
 * Call sodium_init() (via rnd_init) once at program start. */
#ifndef PINGYI_RND_H
#define PINGYI_RND_H

#include <stddef.h>

/* Initialise libsodium; returns 0 or -1 if the system has no randomness. */
int rnd_init(void);
void rnd_bytes(void *out, size_t n);
/* Write n random characters from an alphabet without look-alikes
 * (no 0/o, 1/l/i) and a NUL into out[n + 1]: ~4.95 bits per character. */
void rnd_token(char *out, size_t n);

#endif
