/* rnd.c - see rnd.h. */
#include "rnd.h"

#include <sodium.h>

static const char alphabet[] = "23456789abcdefghjkmnpqrstuvwxyz";

/* libsodium's own ChaCha20 generator, seeded (and reseeded after fork)
 * from the kernel: the default asks the kernel on every call, a system call
 * per form token on the collector's hot path. */
int rnd_init(void)
{
	randombytes_set_implementation(&randombytes_internal_implementation);
	return sodium_init() < 0 ? -1 : 0;
}
void rnd_bytes(void *out, size_t n) { randombytes_buf(out, n); }

void rnd_token(char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
	out[n] = '\0';
}
