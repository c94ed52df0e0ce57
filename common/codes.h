/* codes.h - ballot codes (测评码): making, normalising and hashing them.
 *
 * A code is 15 characters from Crockford's base32 alphabet (75 random bits),
 * printed in three groups of five: K7M2P-9QAX3-HT4WZ. People type codes from
 * paper slips, so normalising forgives what a person would not notice: case,
 * spaces and hyphens, full-width letters and digits (a Chinese input method
 * in full-width mode), and the look-alikes O→0, I and L→1. The database holds
 * only HMAC-SHA256(server secret, normalised code), so a copy of it does not
 * give the codes away. Which codes exist and what they may rate is the
 * collector's and the command line's business. */
#ifndef PINGYI_CODES_H
#define PINGYI_CODES_H

#include <stdbool.h>
#include <stddef.h>

enum {
	CODE_LEN = 15,             /* characters of a normalised code */
	CODE_PRINTED = 17,         /* with the two hyphens */
	CODE_HASH = 32,            /* bytes of a code's keyed hash */
	CODE_SECRET = 32,          /* bytes of the server secret */
	CODE_INPUT_MAX = 128,      /* longest input normalisation looks at */
};

/* A fresh random code, normalised, NUL-terminated: out[CODE_LEN + 1]. */
void code_generate(char *out);
/* Normalise what a person typed or a URL carried into out[CODE_LEN + 1].
 * Returns false when it cannot be a code (wrong length or characters). */
bool code_normalise(const char *in, char *out);
/* The printed form with hyphens: out[CODE_PRINTED + 1]. */
void code_print(const char *code, char *out);
/* HMAC-SHA256 of the normalised code under secret[CODE_SECRET]. */
void code_hash(const unsigned char *secret, const char *code, unsigned char *out);
/* Read the server secret (64 hex digits, as pingyi init stores it).
 * Returns false when hex is not a valid secret. */
bool code_secret_from_hex(const char *hex, unsigned char *secret);

#endif
