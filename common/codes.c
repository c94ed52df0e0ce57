/* codes.c - see codes.h. */
#include "codes.h"

#include <sodium.h>
#include <string.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void code_generate(char *out)
{
	for (int i = 0; i < CODE_LEN; i++)
		out[i] = alphabet[randombytes_uniform(32)];
	out[CODE_LEN] = '\0';
}

/* One normalised character for code point cp, or 0 to skip it, or -1. */
static int normal_char(unsigned cp)
{
	if (cp >= 0xff01 && cp <= 0xff5e)        /* full-width ASCII */
		cp -= 0xfee0;
	if (cp == ' ' || cp == '-' || cp == 0x3000 || cp == 0x2010 || cp == 0x2013 || cp == 0x2014)
		return 0;
	if (cp >= 'a' && cp <= 'z')
		cp -= 'a' - 'A';
	if (cp == 'O')
		return '0';
	if (cp == 'I' || cp == 'L')
		return '1';
	if (cp < 128 && cp && strchr(alphabet, (int)cp))
		return (int)cp;
	return -1;
}

bool code_normalise(const char *in, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = 0;
	for (size_t i = 0; s[i] && i < CODE_INPUT_MAX;) {
		unsigned cp = s[i];
		size_t len = 1;
		if (cp >= 0xe0 && cp < 0xf0 && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80) {
			cp = ((cp & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3fu);
			len = 3;
		} else if (cp >= 0x80) {
			return false;
		}
		int c = normal_char(cp);
		if (c < 0 || (c > 0 && n == CODE_LEN))
			return false;
		if (c > 0)
			out[n++] = (char)c;
		i += len;
	}
	out[n] = '\0';
	return n == CODE_LEN && strlen(in) <= CODE_INPUT_MAX;
}

void code_print(const char *code, char *out)
{
	memcpy(out, code, 5);
	out[5] = '-';
	memcpy(out + 6, code + 5, 5);
	out[11] = '-';
	memcpy(out + 12, code + 10, 5);
	out[17] = '\0';
}

void code_hash(const unsigned char *secret, const char *code, unsigned char *out)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, secret, CODE_SECRET);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)"pingyi-code-v1:", 15);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)code, strlen(code));
	crypto_auth_hmacsha256_final(&st, out);
}

bool code_secret_from_hex(const char *hex, unsigned char *secret)
{
	size_t got = 0;
	return strlen(hex) == 2 * CODE_SECRET &&
		sodium_hex2bin(secret, CODE_SECRET, hex, strlen(hex), NULL, &got, NULL) == 0 &&
		got == CODE_SECRET;
}
