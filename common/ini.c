/* ini.c - see ini.h. */
#include "ini.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "fmt.h"
#include "mem.h"
#include "str.h"

static int fail(char *err, size_t errsize, const char *file, int line, const char *why)
{
	fmt_into(err, errsize, "%s:%d: %s", file, line, why);
	return -1;
}

int ini_parse(const char *text, const char *filename, ini_handler handler, void *ctx,
	char *err, size_t errsize)
{
	char kind[64] = "", name[128] = "", why[512];
	if (str_starts(text, "\xEF\xBB\xBF"))
		text += 3;
	int line = 0;
	for (const char *p = text; *p;) {
		line++;
		size_t n = strcspn(p, "\n");
		char *s = xstrndup(p, n);
		p += n + (p[n] == '\n');
		if (!utf8_valid_text(s, strlen(s))) {
			free(s);
			return fail(err, errsize, filename, line, "the line is not valid UTF-8 text (save the file as UTF-8)");
		}
		str_trim(s);
		ini_item it = { .line = line, .kind = kind, .name = name };
		bool ok = true;
		why[0] = '\0';
		if (s[0] == '\0' || s[0] == '#') {
			/* blank or comment */
		} else if (s[0] == '[') {
			size_t len = strlen(s);
			char *space = strchr(s, ' ');
			if (s[len - 1] != ']' || len < 3) {
				fmt_into(why, sizeof why, "a section header is [kind] or [kind name]");
				ok = false;
			} else {
				s[len - 1] = '\0';
				if (space)
					*space = '\0';
				str_copy(kind, sizeof kind, s + 1);
				str_copy(name, sizeof name, space ? str_trim(space + 1) : "");
				ok = handler(ctx, &it, why, sizeof why);
			}
		} else {
			char *eq = strchr(s, '=');
			if (!eq)
				fmt_into(why, sizeof why, "expected \"key = value\"");
			else if (!kind[0])
				fmt_into(why, sizeof why, "\"%s\" comes before any [section]", s);
			if (eq && kind[0]) {
				*eq = '\0';
				it.key = str_trim(s);
				it.value = str_trim(eq + 1);
				ok = handler(ctx, &it, why, sizeof why);
			} else {
				ok = false;
			}
		}
		free(s);
		if (!ok)
			return fail(err, errsize, filename, line, why[0] ? why : "not understood");
	}
	return 0;
}

char *ini_read_file(const char *path, size_t max, char *err, size_t errsize)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fmt_into(err, errsize, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	buf b;
	buf_init(&b, max);
	char chunk[4096];
	size_t n;
	errno = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && buf_append(&b, chunk, n))
		;
	int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
	fclose(f);
	const char *nul = b.len ? memchr(b.data, '\0', b.len) : NULL;
	if (read_errno)
		fmt_into(err, errsize, "%s: cannot read: %s", path, strerror(read_errno));
	else if (b.overflow)
		fmt_into(err, errsize, "%s: larger than %zu KiB; is this the right file?", path, (max + 1023) / 1024);
	else if (nul) {   /* on its line: text after it would be cut off unseen */
		int line = 1;
		for (const char *c = b.data; c < nul; c++)
			line += *c == '\n';
		fmt_into(err, errsize, "%s:%d: NUL byte in the text; save the file as UTF-8 text", path, line);
	} else {
		return buf_take(&b);
	}
	buf_free(&b);
	return NULL;
}
