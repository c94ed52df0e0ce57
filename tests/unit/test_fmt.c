/* test_fmt.c - the escaping formatter (common/fmt.h).
 *
 * Each escaping conversion is tried on every single byte, so that "escapes
 * these and nothing else" is checked rather than sampled; JSON output is read
 * back with jansson and CSV output with our own reader (common/csv.h), which
 * is what the other end of each channel will do. Numbers are compared with
 * the C library's printf. The buffer limit is tried at every size from 0 up,
 * and an unknown conversion must abort (checked in a child process). */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/csv.h"
#include "common/fmt.h"
#include "common/mem.h"

/* One buffer for the results of f(); freed by the group teardown, so a
 * failing assertion leaks nothing. */
static buf out;

static const char *f(const char *fmt, ...)
{
	buf_free(&out);
	buf_init(&out, 1 << 20);
	va_list ap;
	va_start(ap, fmt);
	bool ok = buf_vfmt(&out, fmt, ap);
	va_end(ap);
	assert_true(ok);
	return buf_str(&out);
}

static int group_teardown(void **state)
{
	(void)state;
	buf_free(&out);
	return 0;
}

/* Strings that have broken escaping somewhere before. */
static const char *const nasty[] = {
	"",
	"plain",
	"\"",
	"\\",
	"\"\\\"",
	"</script><script>alert(1)</script>",
	"a\nb\rc\td",
	"\x01\x02\x1f\x7f",
	"\\u0000",
	"ends with backslash \\",
	"中文 评议 ＂引号＂ 😀",
	"\xe2\x80\xa8 line separator \xe2\x80\xa9",
	"' OR 1=1 --",
	"=HYPERLINK(\"http://x\",\"y\")",
	"{\"json\":[1,2]}",
	"\x1b[31mred\x1b[0m",
};

/* ---- %h ---- */

static void test_html_every_byte(void **state)
{
	(void)state;
	for (int c = 1; c < 256; c++) {
		char in[2] = { (char)c, 0 };
		const char *want;
		switch (c) {
		case '&': want = "&amp;"; break;
		case '<': want = "&lt;"; break;
		case '>': want = "&gt;"; break;
		case '"': want = "&quot;"; break;
		case '\'': want = "&#39;"; break;
		default: want = in;
		}
		assert_string_equal(f("%h", in), want);
	}
}

static void test_html_strings(void **state)
{
	(void)state;
	assert_string_equal(f("<a title=\"%h\">%h</a>", "\"onmouseover='x'", "<b>&amp;</b>"),
		"<a title=\"&quot;onmouseover=&#39;x&#39;\">&lt;b&gt;&amp;amp;&lt;/b&gt;</a>");
	assert_string_equal(f("%h", "中文 ＂x＂ 😀 é"), "中文 ＂x＂ 😀 é");
	assert_string_equal(f("%h", "a\nb\tc"), "a\nb\tc");
	assert_string_equal(f("[%h]", ""), "[]");
}

/* ---- %U ---- */

static void test_url_every_byte(void **state)
{
	(void)state;
	for (int c = 1; c < 256; c++) {
		char in[2] = { (char)c, 0 };
		char want[4];
		bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (unreserved)
			snprintf(want, sizeof want, "%c", c);
		else
			snprintf(want, sizeof want, "%%%02X", c);
		assert_string_equal(f("%U", in), want);
	}
}

static void test_url_strings(void **state)
{
	(void)state;
	assert_string_equal(f("%U", "中"), "%E4%B8%AD");
	assert_string_equal(f("%U", "a b/c?d&e=f%g+h#i"), "a%20b%2Fc%3Fd%26e%3Df%25g%2Bh%23i");
	assert_string_equal(f("%U", "Az09-._~"), "Az09-._~");
	assert_string_equal(f("/u/%U?lang=%U", "k7m2p9qa", "en"), "/u/k7m2p9qa?lang=en");
}

/* ---- %J ---- */

/* s as a JSON string must read back as exactly s. */
static void json_round_trip(const char *s)
{
	const char *text = f("[%J]", s);
	json_error_t je;
	json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!a)
		print_error("jansson rejects %s: %s\n", text, je.text);
	assert_non_null(a);
	json_t *v = json_array_get(a, 0);
	bool same = json_is_string(v) && json_string_length(v) == strlen(s) &&
		memcmp(json_string_value(v), s, strlen(s)) == 0 && json_array_size(a) == 1;
	json_decref(a);
	if (!same)
		print_error("%s does not read back\n", text);
	assert_true(same);
	/* Nothing below 0x20 may appear raw inside the string. */
	for (const char *p = text; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
}

static void test_json_with_jansson(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++)
		json_round_trip(nasty[i]);
	for (int c = 1; c < 128; c++) {
		char in[4] = { 'x', (char)c, 'y', 0 };
		json_round_trip(in);
	}
}

static void test_json_exact(void **state)
{
	(void)state;
	assert_string_equal(f("%J", "a\"b\\c"), "\"a\\\"b\\\\c\"");
	assert_string_equal(f("%J", "\n"), "\"\\n\"");
	assert_string_equal(f("%J", "\x01"), "\"\\u0001\"");
	assert_string_equal(f("%J", "\x1f"), "\"\\u001f\"");
	assert_string_equal(f("%J", "中文😀/"), "\"中文😀/\"");
	assert_string_equal(f("%J", ""), "\"\"");
	assert_string_equal(f("{%J:%J}", "k", "v"), "{\"k\":\"v\"}");
}

/* ---- %C ---- */

static void test_csv_cells(void **state)
{
	(void)state;
	static const struct { const char *in, *want; } cases[] = {
		{ "plain text", "plain text" },
		{ "中文名称", "中文名称" },
		{ "", "" },
		{ "a=b", "a=b" },
		{ "'quoted'", "'quoted'" },
		{ "x@y.cn", "x@y.cn" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "\"", "\"\"\"\"" },
		{ "line1\nline2", "\"line1\nline2\"" },
		{ "line1\r\nline2", "\"line1\r\nline2\"" },
		{ "a\rb", "\"a\rb\"" },
		{ "=1+1", "\"'=1+1\"" },
		{ "+86 10 1234", "\"'+86 10 1234\"" },
		{ "-5", "\"'-5\"" },
		{ "@SUM(A1)", "\"'@SUM(A1)\"" },
		{ "\tx", "\"'\tx\"" },
		{ "\rx", "\"'\rx\"" },
		{ "=HYPERLINK(\"u\",\"t\")", "\"'=HYPERLINK(\"\"u\"\",\"\"t\"\")\"" },
		{ "=a,b", "\"'=a,b\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_string_equal(f("%C", cases[i].in), cases[i].want);
	assert_string_equal(f("%C,%C\r\n", "a", "b,c"), "a,\"b,c\"\r\n");
}

/* What %C writes, csv.c reads back (formulas with their leading '). */
static void test_csv_reads_back(void **state)
{
	(void)state;
	static const char *const cells[] = {
		"plain", "", "a,b", "say \"hi\"", "two\nlines", "crlf\r\ninside", "=1+1", "-5",
		"中文", "＂全角＂", "\"", ",", "\"\"",
	};
	enum { N = sizeof cells / sizeof cells[0] };
	buf line;
	buf_init(&line, 4096);
	for (size_t i = 0; i < N; i++)
		assert_true(buf_fmt(&line, i ? ",%C" : "%C", cells[i]));
	assert_true(buf_fmt(&line, "\r\nnext\r\n"));
	FILE *in = fmemopen(line.data, line.len, "r");
	assert_non_null(in);
	csv_reader r;
	csv_open(&r, in);
	csv_row row;
	char err[256] = "";
	int rc = csv_next(&r, &row, err, sizeof err);
	if (rc != 1)
		print_error("%s\n", err);
	assert_int_equal(rc, 1);
	assert_int_equal(row.n, N);
	for (size_t i = 0; i < N; i++) {
		bool formula = cells[i][0] && strchr("=+-@\t\r", cells[i][0]);
		char *want = fmt_alloc("%s%s", formula ? "'" : "", cells[i]);
		bool same = strcmp(row.fields[i], want) == 0;
		free(want);
		assert_true(same);
	}
	csv_row_free(&row);
	assert_int_equal(csv_next(&r, &row, err, sizeof err), 1);
	assert_int_equal(row.line, 4); /* two cells held a line break */
	assert_string_equal(row.fields[0], "next");
	csv_row_free(&row);
	assert_int_equal(csv_next(&r, &row, err, sizeof err), 0);
	fclose(in);
	buf_free(&line);
}

/* ---- numbers, %%, NULL ---- */

static void test_numbers(void **state)
{
	(void)state;
	char want[128];
	assert_string_equal(f("%d %d %d", 0, INT_MIN, INT_MAX), "0 -2147483648 2147483647");
	assert_string_equal(f("%u %u", 0u, UINT_MAX), "0 4294967295");
	assert_string_equal(f("%x %x", 0xdeadbeefu, 0u), "deadbeef 0");
	snprintf(want, sizeof want, "%ld %ld %lu", LONG_MIN, LONG_MAX, ULONG_MAX);
	assert_string_equal(f("%ld %ld %lu", LONG_MIN, LONG_MAX, ULONG_MAX), want);
	assert_string_equal(f("%lld %llu", LLONG_MIN, ULLONG_MAX),
		"-9223372036854775808 18446744073709551615");
	snprintf(want, sizeof want, "%zu", SIZE_MAX);
	assert_string_equal(f("%zu", SIZE_MAX), want);
	assert_string_equal(f("%zu", (size_t)0), "0");

	static const double values[] = { 0, -0.0, 0.5, 1.5, 2.5, 2.0 / 3, -1.0 / 3, 0.95, 99.995,
		1e10, -123456.789, 1e-7, 0.123456789012 };
	static const char *const precise[] = { "%.0f", "%.1f", "%.2f", "%.3f", "%.4f", "%.5f",
		"%.6f", "%.7f", "%.8f", "%.9f", "%f" };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		for (size_t p = 0; p < sizeof precise / sizeof precise[0]; p++) {
			snprintf(want, sizeof want, precise[p], values[i]);
			assert_string_equal(f(precise[p], values[i]), want);
		}
	assert_string_equal(f("%.4f|%.2f", 0.95, 90.0), "0.9500|90.00");
	assert_string_equal(f("%f", 3.14159), "3.141590");
	assert_string_equal(f("[%d:%s:%.1f:%h]", 7, "lit", 0.25, "<"), "[7:lit:0.2:&lt;]");
}

static void test_percent_and_null(void **state)
{
	(void)state;
	assert_string_equal(f("%%"), "%");
	assert_string_equal(f("100%%"), "100%");
	assert_string_equal(f("%d%%%%", 5), "5%%");
	assert_string_equal(f("no conversions at all"), "no conversions at all");
	assert_string_equal(f(""), "");
	assert_string_equal(f("[%s][%h][%U][%C]", NULL, NULL, NULL, NULL), "[][][][]");
	assert_string_equal(f("[%J]", NULL), "[\"\"]");
}

/* An unknown conversion is a programming error: the process aborts. */
static void test_bad_conversion_aborts(void **state)
{
	(void)state;
	static const char *const bad[] = { "%q", "trailing %", "%lx", "%z", "%zd", "%.f",
		"%.10f", "%5d", "%i", "%c", "%p", "%lf", "%llx" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 2);
			buf b;
			buf_init(&b, 100);
			buf_fmt(&b, bad[i], 1, 2, 3);
			_exit(0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
			print_error("format \"%s\" did not abort\n", bad[i]);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	}
}

/* ---- the buffer limit ---- */

#define LONG_TEXT "<p class=\"x\">中文 & 'quotes' \\ \n " \
	"the quick brown fox jumps over the lazy dog</p>"

static void test_limit_every_size(void **state)
{
	(void)state;
	static const char *const fmts[] = { "%h", "%U", "%J", "%C", "%s", "ab%hcd%Jef%d", "%h%%%J %d" };
	for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
		const char *full = f(fmts[k], "=" LONG_TEXT, "x\"y", 123456);
		char *whole = xstrdup(full);
		size_t n = strlen(whole);
		for (size_t max = 0; max <= 40; max++) {
			buf b;
			buf_init(&b, max);
			bool ok = buf_fmt(&b, fmts[k], "=" LONG_TEXT, "x\"y", 123456);
			assert_true(b.len <= max);
			assert_true(b.cap <= max + 1);
			assert_int_equal(ok, n <= max);
			assert_int_equal(b.overflow, !ok);
			assert_int_equal(strlen(buf_str(&b)), b.len);
			assert_memory_equal(buf_str(&b), whole, b.len); /* a prefix of the whole */
			buf_free(&b);
		}
		free(whole);
	}
}

/* fmt.h: on overflow "the output is then truncated at a conversion
 * boundary": a conversion is written whole or not at all, so no half JSON
 * string, half CSV cell or half UTF-8 character is left behind. */
static void test_limit_at_conversion_boundary(void **state)
{
	(void)state;
	static const char *const fmts[] = { "%h", "%U", "%J", "%C", "ab%hcd%Jef" };
	for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
		/* The lengths at which the output may end: after each piece. */
		size_t ends[8], n_ends = 0;
		buf whole;
		buf_init(&whole, 1 << 16);
		ends[n_ends++] = 0;
		const char *p = fmts[k];
		int arg = 0;
		while (*p) {
			if (*p == '%') {
				char conv[3] = { '%', p[1], 0 };
				buf_fmt(&whole, conv, arg++ ? "x\"y" : "=" LONG_TEXT);
				p += 2;
			} else {
				size_t lit = strcspn(p, "%");
				buf_append(&whole, p, lit);
				p += lit;
			}
			ends[n_ends++] = whole.len;
		}
		for (size_t max = 0; max < whole.len; max++) {
			buf b;
			buf_init(&b, max);
			assert_false(buf_fmt(&b, fmts[k], "=" LONG_TEXT, "x\"y"));
			bool at_boundary = false;
			for (size_t e = 0; e < n_ends; e++)
				at_boundary |= b.len == ends[e];
			if (!at_boundary)
				print_error("\"%s\" with limit %zu left \"%s\", cut inside a conversion\n",
					fmts[k], max, buf_str(&b));
			buf_free(&b);
			if (!at_boundary)
				buf_free(&whole);
			assert_true(at_boundary);
		}
		buf_free(&whole);
	}
}

static void test_fmt_into(void **state)
{
	(void)state;
	char dst[16];
	memset(dst, 'X', sizeof dst);
	fmt_into(dst, 8, "hello %s", "world");
	assert_string_equal(dst, "hello w");
	assert_int_equal(dst[8], 'X'); /* nothing past size */
	fmt_into(dst, sizeof dst, "%h", "<a&b>");
	assert_string_equal(dst, "&lt;a&amp;b&gt;");
	fmt_into(dst, 1, "anything");
	assert_string_equal(dst, "");
	memset(dst, 'X', sizeof dst);
	fmt_into(dst, 0, "anything");
	assert_int_equal(dst[0], 'X');
	fmt_into(dst, sizeof dst, "line %d: %s", 12, "bad");
	assert_string_equal(dst, "line 12: bad");
	/* Exactly size - 1 characters fit. */
	fmt_into(dst, 6, "%s", "12345");
	assert_string_equal(dst, "12345");
	fmt_into(dst, 6, "%s", "123456");
	assert_string_equal(dst, "12345");
}

static void test_fmt_alloc(void **state)
{
	(void)state;
	char *s = fmt_alloc("%s/%U.png", "out dir", "单位 1");
	assert_string_equal(s, "out dir/%E5%8D%95%E4%BD%8D%201.png");
	free(s);
	s = fmt_alloc("");
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	s = fmt_alloc("%J", "a\nb");
	assert_string_equal(s, "\"a\\nb\"");
	free(s);
	/* A long result is not cut short below its 1 MiB limit. */
	enum { BIG = 200000 }; /* 5 * BIG bytes of "&amp;" stay under 1 MiB */
	char *big = xmalloc(BIG + 1);
	memset(big, '&', BIG);
	big[BIG] = 0;
	s = fmt_alloc("%h", big);
	size_t n = strlen(s);
	bool escaped = strncmp(s, "&amp;&amp;", 10) == 0;
	free(s);
	free(big);
	assert_int_equal(n, 5 * BIG);
	assert_true(escaped);
}

static void test_buf_fmt_appends(void **state)
{
	(void)state;
	buf b;
	buf_init(&b, 64);
	assert_true(buf_fmt(&b, "a=%d", 1));
	assert_true(buf_fmt(&b, "&b=%U", "x y"));
	assert_string_equal(buf_str(&b), "a=1&b=x%20y");
	assert_int_equal(b.len, strlen("a=1&b=x%20y"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_html_every_byte),
		cmocka_unit_test(test_html_strings),
		cmocka_unit_test(test_url_every_byte),
		cmocka_unit_test(test_url_strings),
		cmocka_unit_test(test_json_with_jansson),
		cmocka_unit_test(test_json_exact),
		cmocka_unit_test(test_csv_cells),
		cmocka_unit_test(test_csv_reads_back),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_percent_and_null),
		cmocka_unit_test(test_bad_conversion_aborts),
		cmocka_unit_test(test_limit_every_size),
		cmocka_unit_test(test_limit_at_conversion_boundary),
		cmocka_unit_test(test_fmt_into),
		cmocka_unit_test(test_fmt_alloc),
		cmocka_unit_test(test_buf_fmt_appends),
	};
	return cmocka_run_group_tests(tests, NULL, group_teardown);
}
