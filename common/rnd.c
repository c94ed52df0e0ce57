/* rnd.c - see rnd.h. */
#include "rnd.h"

#include <sodium.h>
#include <string.h>

static const char alphabet[] = "23456789abcdefghjkmnpqrstuvwxyz";

/* libsodium's own ChaCha20 generator, seeded (and reseeded after fork)
 * from the kernel: the default asks the kernel on every call, a system call
 * per form token on the collector's hot path. */
int rnd_init(void)
{
	randombytes_set_implementation(&randombytes_internal_implementation);
	return sodium_init() < 0 ? -1 : 0;
}
/* Small draws (form-token nonces, ballot keys) come from a per-thread pool
 * refilled 4 KiB at a time: libsodium's generator calls getpid() on every
 * draw (to notice a fork), a system call per request on the collector's hot
 * path. None of the programs forks. */
enum { POOL = 4096, SMALL = 32 };

void rnd_bytes(void *out, size_t n)
{
	static _Thread_local unsigned char pool[POOL];
	static _Thread_local size_t left;
	if (n > SMALL) {
		randombytes_buf(out, n);
		return;
	}
	if (left < n) {
		randombytes_buf(pool, sizeof pool);
		left = sizeof pool;
	}
	left -= n;
	memcpy(out, pool + left, n);
	sodium_memzero(pool + left, n);   /* a byte handed out is not kept */
}

void rnd_token(char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
	out[n] = '\0';
}
