/* kv.h - strict parsing of application/x-www-form-urlencoded text.
 *
 * Used for POST bodies and query strings. Strict means: every %XX is two
 * hex digits, '+' is a space, the decoded text is valid UTF-8 without NUL
 * or control characters (TAB, LF and CR allowed), names are not empty and
 * not repeated. Errors are codes, so that the caller can explain them in
 * the page's language. */
#ifndef PINGYI_KV_H
#define PINGYI_KV_H

#include <stddef.h>

typedef struct kv_pair {
	char *name;
	char *value;
} kv_pair;

typedef struct kv_list {
	kv_pair *items;
	size_t n, cap;
} kv_list;

enum kv_error {
	KV_OK = 0,
	KV_BAD_ESCAPE,   /* '%' not followed by two hex digits */
	KV_BAD_TEXT,     /* invalid UTF-8, NUL or a control character */
	KV_EMPTY_NAME,   /* "=x" or a pair without a name */
	KV_DUPLICATE,    /* the same name twice */
	KV_TOO_MANY,     /* more than max_pairs pairs */
};

/* Parse s[0..len) into out (which the caller frees with kv_free, also on
 * error). A pair without '=' has an empty value. */
enum kv_error kv_parse(const char *s, size_t len, size_t max_pairs, kv_list *out);
/* The value of name, or NULL. Owned by the list. */
const char *kv_get(const kv_list *list, const char *name);
/* Remove name from the list and return its value (the caller frees it),
 * or NULL when it is not there. */
char *kv_take(kv_list *list, const char *name);
void kv_free(kv_list *list);

#endif
