/* kv.c - see kv.h. */
#include "kv.h"

#include <string.h>

#include "mem.h"
#include "str.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into a new string; NULL on a bad escape or bad text. */
static char *decode(const char *s, size_t n, enum kv_error *why)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				*why = KV_BAD_ESCAPE;
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (!utf8_valid_text(out, o)) {
		free(out);
		*why = KV_BAD_TEXT;
		return NULL;
	}
	return out;
}

enum kv_error kv_parse(const char *s, size_t len, size_t max_pairs, kv_list *out)
{
	memset(out, 0, sizeof *out);
	size_t pos = 0;
	while (pos < len) {
		const char *amp = memchr(s + pos, '&', len - pos);
		size_t end = amp ? (size_t)(amp - s) : len;
		if (end == pos) { /* tolerate "a=1&&b=2" and a trailing '&' */
			pos = end + 1;
			continue;
		}
		if (out->n == max_pairs)
			return KV_TOO_MANY;
		const char *eq = memchr(s + pos, '=', end - pos);
		size_t name_end = eq ? (size_t)(eq - s) : end;
		if (name_end == pos)
			return KV_EMPTY_NAME;
		enum kv_error why = KV_OK;
		char *name = decode(s + pos, name_end - pos, &why);
		if (!name)
			return why;
		char *value = eq ? decode(eq + 1, end - name_end - 1, &why) : xstrdup("");
		if (!value) {
			free(name);
			return why;
		}
		if (kv_get(out, name)) {
			free(name);
			free(value);
			return KV_DUPLICATE;
		}
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 16;
			out->items = xrealloc(out->items, out->cap * sizeof *out->items);
		}
		out->items[out->n++] = (kv_pair){ name, value };
		pos = end + 1;
	}
	return KV_OK;
}

const char *kv_get(const kv_list *list, const char *name)
{
	for (size_t i = 0; i < list->n; i++)
		if (strcmp(list->items[i].name, name) == 0)
			return list->items[i].value;
	return NULL;
}

char *kv_take(kv_list *list, const char *name)
{
	for (size_t i = 0; i < list->n; i++) {
		if (strcmp(list->items[i].name, name) != 0)
			continue;
		char *value = list->items[i].value;
		free(list->items[i].name);
		memmove(&list->items[i], &list->items[i + 1], (list->n - i - 1) * sizeof *list->items);
		list->n--;
		return value;
	}
	return NULL;
}

void kv_free(kv_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->items[i].name);
		free(list->items[i].value);
	}
	free(list->items);
	memset(list, 0, sizeof *list);
}
