/* test_common.c - the small helpers in common/: kv, str, buf and csv.
 *
 * kv.c is what stands between a POST body and the collector, so each way a
 * body can be malformed is tried with the error code it must produce. The
 * CSV reader is fed from memory (fmemopen) exactly as an import reads a
 * file; each result is turned into a short text ("L<line>:a|b") so a case is
 * one line. The formatter has its own file, test_fmt.c. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
/* LeakSanitizer comes with AddressSanitizer (the SAN=1 build). */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "common/buf.h"
#include "common/csv.h"
#include "common/fmt.h"
#include "common/ini.h"
#include "common/kv.h"
#include "common/mem.h"
#include "common/str.h"

/* ---- kv ---- */

/* Parse s (a C string) and keep the list for kv_get; freed by the caller
 * with kv_free. */
static enum kv_error parse(const char *s, size_t max, kv_list *l)
{
	return kv_parse(s, strlen(s), max, l);
}

/* The error code of parsing s, freeing whatever was parsed. */
static enum kv_error kv_code(const char *s, size_t len, size_t max)
{
	kv_list l;
	enum kv_error e = kv_parse(s, len, max, &l);
	kv_free(&l);
	return e;
}

#define KV_CODE(s) kv_code((s), sizeof(s) - 1, 16)

static void test_kv_ok(void **state)
{
	(void)state;
	kv_list l;
	assert_int_equal(parse("overall=s&leadership=b&comment=a+b%2Bc%20d%e4%b8%AD", 16, &l), KV_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].name, "overall");
	assert_string_equal(kv_get(&l, "overall"), "s");
	assert_string_equal(kv_get(&l, "leadership"), "b");
	assert_string_equal(kv_get(&l, "comment"), "a b+c d中");
	assert_null(kv_get(&l, "members"));
	assert_null(kv_get(&l, "Overall"));
	kv_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.items);

	/* Empty pairs are tolerated; a pair without '=' has an empty value. */
	assert_int_equal(parse("&a=1&&b=2&", 16, &l), KV_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(kv_get(&l, "a"), "1");
	assert_string_equal(kv_get(&l, "b"), "2");
	kv_free(&l);
	assert_int_equal(parse("complaint&x=&y==", 16, &l), KV_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(kv_get(&l, "complaint"), "");
	assert_string_equal(kv_get(&l, "x"), "");
	assert_string_equal(kv_get(&l, "y"), "=");
	kv_free(&l);
	assert_int_equal(parse("", 16, &l), KV_OK);
	assert_int_equal(l.n, 0);
	kv_free(&l);

	/* Names are decoded too; TAB, LF and CR are allowed text. */
	assert_int_equal(parse("a%62c=%09%0A%0d&+=space", 16, &l), KV_OK);
	assert_string_equal(kv_get(&l, "abc"), "\t\n\r");
	assert_string_equal(kv_get(&l, " "), "space");
	kv_free(&l);

	/* Only len bytes are read. */
	assert_int_equal(kv_parse("a=1&b=2", 3, 16, &l), KV_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(kv_get(&l, "a"), "1");
	kv_free(&l);
	/* %XX in upper and lower case. */
	assert_int_equal(parse("x=%3c%3C%3e%3E", 16, &l), KV_OK);
	assert_string_equal(kv_get(&l, "x"), "<<>>");
	kv_free(&l);
}

static void test_kv_errors(void **state)
{
	(void)state;
	assert_int_equal(KV_CODE("a=%G1"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=%1G"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=%"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=%4"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=%4&b=1"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("%=1"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=%%41"), KV_BAD_ESCAPE);
	assert_int_equal(KV_CODE("a=% 41"), KV_BAD_ESCAPE);
	/* The escape may not reach past len. */
	assert_int_equal(kv_code("a=%41", 4, 16), KV_BAD_ESCAPE);

	assert_int_equal(KV_CODE("a=%C0%AF"), KV_BAD_TEXT);     /* overlong '/' */
	assert_int_equal(KV_CODE("a=%E0%80%AF"), KV_BAD_TEXT);  /* overlong, 3 bytes */
	assert_int_equal(KV_CODE("a=%ED%A0%80"), KV_BAD_TEXT);  /* surrogate */
	assert_int_equal(KV_CODE("a=%F4%90%80%80"), KV_BAD_TEXT); /* above U+10FFFF */
	assert_int_equal(KV_CODE("a=%FF"), KV_BAD_TEXT);
	assert_int_equal(KV_CODE("a=%E4%B8"), KV_BAD_TEXT);     /* cut short */
	assert_int_equal(KV_CODE("a=%80"), KV_BAD_TEXT);        /* lone continuation */
	assert_int_equal(KV_CODE("a=\xff"), KV_BAD_TEXT);       /* raw bad byte */
	assert_int_equal(KV_CODE("a=%00"), KV_BAD_TEXT);
	assert_int_equal(KV_CODE("a=%01"), KV_BAD_TEXT);
	assert_int_equal(KV_CODE("a=%1B"), KV_BAD_TEXT);
	assert_int_equal(KV_CODE("a=%7F"), KV_BAD_TEXT);
	assert_int_equal(KV_CODE("a%00=1"), KV_BAD_TEXT);       /* in a name */
	assert_int_equal(kv_code("a=x\0y", 5, 16), KV_BAD_TEXT); /* a raw NUL */

	assert_int_equal(KV_CODE("=x"), KV_EMPTY_NAME);
	assert_int_equal(KV_CODE("a=1&=x"), KV_EMPTY_NAME);
	assert_int_equal(KV_CODE("="), KV_EMPTY_NAME);

	assert_int_equal(KV_CODE("a=1&a=2"), KV_DUPLICATE);
	assert_int_equal(KV_CODE("a=1&b=2&a"), KV_DUPLICATE);
	assert_int_equal(KV_CODE("a=1&%61=2"), KV_DUPLICATE);  /* the same name, decoded */

	assert_int_equal(kv_code("a=1&b=2&c=3", 11, 3), KV_OK);
	assert_int_equal(kv_code("a=1&b=2&c=3", 11, 2), KV_TOO_MANY);
	assert_int_equal(kv_code("a=1&&&b=2&", 10, 2), KV_OK);  /* empty pairs do not count */
	assert_int_equal(kv_code("a", 1, 0), KV_TOO_MANY);
	assert_int_equal(kv_code("", 0, 0), KV_OK);

	/* On error the pairs parsed so far are still the caller's to free. */
	kv_list l;
	assert_int_equal(parse("a=1&b=2&c=%ZZ", 16, &l), KV_BAD_ESCAPE);
	kv_free(&l);
}

static void test_kv_take(void **state)
{
	(void)state;
	kv_list l;
	assert_int_equal(parse("a=1&b=2&c=3", 16, &l), KV_OK);
	char *v = kv_take(&l, "b");
	assert_string_equal(v, "2");
	free(v);
	assert_int_equal(l.n, 2);
	assert_null(kv_get(&l, "b"));
	assert_null(kv_take(&l, "b"));
	assert_string_equal(l.items[0].name, "a"); /* the others keep their order */
	assert_string_equal(l.items[1].name, "c");
	v = kv_take(&l, "c");
	assert_string_equal(v, "3");
	free(v);
	v = kv_take(&l, "a");
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(l.n, 0);
	assert_null(kv_take(&l, "a"));
	kv_free(&l);
}

/* ---- UTF-8 ---- */

static bool valid(const char *s) { return utf8_valid_text(s, strlen(s)); }

static void test_utf8_valid_text(void **state)
{
	(void)state;
	assert_true(valid(""));
	assert_true(valid("plain ASCII ~!@#"));
	assert_true(valid("中文 ＂全角＂ 한국어 é"));
	assert_true(valid("tab\tlf\ncr\r"));
	assert_true(valid("\xC2\x80"));               /* U+0080, the smallest 2-byte */
	assert_true(valid("\xDF\xBF"));               /* U+07FF */
	assert_true(valid("\xE0\xA0\x80"));           /* U+0800 */
	assert_true(valid("\xED\x9F\xBF"));           /* U+D7FF, just below the surrogates */
	assert_true(valid("\xEE\x80\x80"));           /* U+E000, just above */
	assert_true(valid("\xEF\xBF\xBF"));           /* U+FFFF */
	assert_true(valid("\xF0\x90\x80\x80"));       /* U+10000 */
	assert_true(valid("\xF0\x9F\x98\x80"));       /* 😀 */
	assert_true(valid("\xF4\x8F\xBF\xBF"));       /* U+10FFFF */

	assert_false(valid("\x80"));
	assert_false(valid("\xBF"));
	assert_false(valid("\xC0\x80"));              /* overlong NUL */
	assert_false(valid("\xC0\xAF"));
	assert_false(valid("\xC1\xBF"));
	assert_false(valid("\xE0\x80\xAF"));
	assert_false(valid("\xE0\x9F\xBF"));          /* overlong U+07FF */
	assert_false(valid("\xED\xA0\x80"));          /* U+D800 */
	assert_false(valid("\xED\xBF\xBF"));          /* U+DFFF */
	assert_false(valid("\xF0\x8F\xBF\xBF"));      /* overlong U+FFFF */
	assert_false(valid("\xF4\x90\x80\x80"));      /* U+110000 */
	assert_false(valid("\xF5\x80\x80\x80"));
	assert_false(valid("\xF8\x88\x80\x80\x80"));
	assert_false(valid("\xFE"));
	assert_false(valid("\xFF"));
	assert_false(valid("\xE4\xB8"));              /* cut short */
	assert_false(valid("\xE4\xB8" "a"));
	assert_false(valid("\xE4" "ab"));
	assert_false(valid("a\x01"));
	assert_false(valid("\x1B[0m"));
	assert_false(valid("\x7F"));
	assert_false(valid("\x0B"));
	assert_false(valid("\x0C"));
	assert_false(utf8_valid_text("a\0b", 3));
	/* Only n bytes count: a character cut by n is not valid. */
	assert_false(utf8_valid_text("中", 2));
	assert_true(utf8_valid_text("ab\xFF", 2));
	assert_true(utf8_valid_text(NULL, 0));
}

static void test_utf8_length_width(void **state)
{
	(void)state;
	assert_int_equal(utf8_length(""), 0);
	assert_int_equal(utf8_length("abc"), 3);
	assert_int_equal(utf8_length("中文abc"), 5);
	assert_int_equal(utf8_length("😀é"), 2);
	assert_int_equal(utf8_width(""), 0);
	assert_int_equal(utf8_width("abc"), 3);
	assert_int_equal(utf8_width("中文"), 4);
	assert_int_equal(utf8_width("党支部 A"), 8);
	assert_int_equal(utf8_width("＂x＂"), 5);       /* full-width forms */
	assert_int_equal(utf8_width("한국"), 4);        /* Hangul */
	assert_int_equal(utf8_width("。，"), 4);        /* CJK punctuation */
	assert_int_equal(utf8_width("é ü"), 3);
	assert_int_equal(utf8_width("𠀀"), 2);          /* CJK extension B */
}

/* ---- numbers ---- */

static void test_str_to_int(void **state)
{
	(void)state;
	int v = 42;
	assert_true(str_to_int("0", INT_MIN, INT_MAX, &v));
	assert_int_equal(v, 0);
	assert_true(str_to_int("-0", INT_MIN, INT_MAX, &v));
	assert_int_equal(v, 0);
	assert_true(str_to_int("+7", INT_MIN, INT_MAX, &v));
	assert_int_equal(v, 7);
	assert_true(str_to_int("2147483647", INT_MIN, INT_MAX, &v));
	assert_int_equal(v, INT_MAX);
	assert_true(str_to_int("-2147483648", INT_MIN, INT_MAX, &v));
	assert_int_equal(v, INT_MIN);
	assert_true(str_to_int("10", 1, 10, &v));
	assert_int_equal(v, 10);
	assert_true(str_to_int("1", 1, 10, &v));
	assert_int_equal(v, 1);

	static const char *const bad[] = { "", "-", "+", " 1", "1 ", "\t1", "\n1", "1\n", "12a",
		"a12", "1.0", "1e3", "0x10", "1,000", "--1", "+-1", "2147483648", "-2147483649",
		"99999999999999999999", "9223372036854775808", "١" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 42;
		if (str_to_int(bad[i], INT_MIN, INT_MAX, &v))
			print_error("str_to_int accepted \"%s\"\n", bad[i]);
		assert_int_equal(v, 42); /* left alone */
	}
	assert_false(str_to_int(NULL, 0, 1, &v));
	assert_false(str_to_int("0", 1, 10, &v));
	assert_false(str_to_int("11", 1, 10, &v));
	assert_false(str_to_int("-1", 0, 10, &v));
	assert_int_equal(v, 42);
}

static void test_str_to_i64(void **state)
{
	(void)state;
	int64_t v = 42;
	assert_true(str_to_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v));
	assert_true(v == INT64_MAX);
	assert_true(str_to_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v));
	assert_true(v == INT64_MIN);
	assert_true(str_to_i64("1700000000", 0, INT64_MAX, &v));
	assert_true(v == 1700000000);
	v = 42;
	assert_false(str_to_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v));
	assert_false(str_to_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v));
	assert_false(str_to_i64("18446744073709551616", INT64_MIN, INT64_MAX, &v));
	assert_false(str_to_i64("5", 6, 7, &v));
	assert_false(str_to_i64(" 5", 0, 7, &v));
	assert_false(str_to_i64("5s", 0, 7, &v));
	assert_false(str_to_i64("", 0, 7, &v));
	assert_true(v == 42);
}

static void test_str_to_double(void **state)
{
	(void)state;
	double v = 42;
	assert_true(str_to_double("0.95", 0, 1, &v));
	assert_true(v == 0.95);
	assert_true(str_to_double("1", 0, 1, &v));
	assert_true(v == 1.0);
	assert_true(str_to_double("0", 0, 1, &v));
	assert_true(v == 0.0);
	assert_true(str_to_double("-2.5", -3, 3, &v));
	assert_true(v == -2.5);
	assert_true(str_to_double(".5", 0, 1, &v));
	assert_true(v == 0.5);
	v = 42;
	static const char *const bad[] = { "", " 0.5", "0.5 ", "\t0.5", "\n0.5", "0.5x", "abc",
		"nan", "NaN", "inf", "-inf", "infinity", "1e999", "-1e999", "1.0000001", "-0.1",
		"0,5", "." };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (str_to_double(bad[i], 0, 1, &v))
			print_error("str_to_double accepted \"%s\"\n", bad[i]);
	assert_true(v == 42);
	assert_false(str_to_double(NULL, 0, 1, &v));
	assert_true(v == 42);
}

/* str.h: "a whole finite decimal number". Leading white space of any kind
 * and hexadecimal are not that (strtod accepts both): "\r0.5", "\v1" and
 * "0x1p-1" must be refused like " 0.5" is. http.c parses Accept-Language
 * q-values with this. */
static void test_str_to_double_decimal_only(void **state)
{
	(void)state;
	static const char *const bad[] = { "\r0.5", "\v0.5", "\f0.5", "0x1p-1", "0x0", "0X.8" };
	bool accepted = false;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double v = 42;
		if (str_to_double(bad[i], 0, 1, &v)) {
			print_error("str_to_double accepted bad[%zu] as %g\n", i, v);
			accepted = true;
		}
	}
	assert_false(accepted);
}

/* ---- strings ---- */

static void test_str_copy_trim(void **state)
{
	(void)state;
	char dst[8];
	memset(dst, 'X', sizeof dst);
	assert_true(str_copy(dst, 4, "abc"));
	assert_string_equal(dst, "abc");
	assert_false(str_copy(dst, 3, "abc"));
	assert_string_equal(dst, "ab");
	assert_false(str_copy(dst, 1, "abc"));
	assert_string_equal(dst, "");
	memset(dst, 'X', sizeof dst);
	assert_false(str_copy(dst, 0, "abc"));
	assert_int_equal(dst[0], 'X');
	assert_true(str_copy(dst, sizeof dst, ""));
	assert_string_equal(dst, "");
	memset(dst, 'X', sizeof dst);
	str_copy(dst, 5, "abcdefgh");
	assert_int_equal(dst[5], 'X'); /* nothing written past size */

	char s1[] = "  a b \t\r\n";
	assert_string_equal(str_trim(s1), "a b");
	char s2[] = "";
	assert_string_equal(str_trim(s2), "");
	char s3[] = " \t\r\n ";
	assert_string_equal(str_trim(s3), "");
	char s4[] = "x";
	assert_string_equal(str_trim(s4), "x");
	char s5[] = "\t中文\n";
	assert_string_equal(str_trim(s5), "中文");
	char s6[] = "a  b";
	assert_ptr_equal(str_trim(s6), s6);
	assert_string_equal(s6, "a  b");

	assert_true(str_starts("round.opened", "round."));
	assert_true(str_starts("abc", ""));
	assert_false(str_starts("ab", "abc"));
	assert_true(str_eq("a", "a"));
	assert_false(str_eq("a", "A"));
	assert_false(str_eq(NULL, "a"));
	assert_false(str_eq("a", NULL));
	assert_false(str_eq(NULL, NULL));
}

/* ---- buf ---- */

static void test_buf(void **state)
{
	(void)state;
	buf b;
	buf_init(&b, 10);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_true(buf_append(&b, "", 0));
	assert_true(buf_puts(&b, "12345"));
	assert_true(buf_putc(&b, '6'));
	assert_true(buf_append(&b, "7890", 4));
	assert_string_equal(buf_str(&b), "1234567890");
	assert_false(b.overflow);
	assert_false(buf_putc(&b, 'x'));
	assert_true(b.overflow);
	assert_int_equal(b.len, 10);
	assert_string_equal(buf_str(&b), "1234567890");
	assert_false(buf_append(&b, "x", SIZE_MAX));
	assert_true(buf_append(&b, "", 0)); /* nothing still fits */
	assert_true(b.cap <= 11);

	/* An append that does not fit appends nothing at all. */
	buf_reset(&b);
	assert_false(b.overflow);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	assert_true(buf_puts(&b, "abcdefgh"));
	assert_false(buf_puts(&b, "ijk"));
	assert_string_equal(buf_str(&b), "abcdefgh");
	assert_true(buf_puts(&b, "ij"));
	assert_int_equal(b.max, 10);

	char *s = buf_take(&b);
	assert_string_equal(s, "abcdefghij");
	free(s);
	assert_int_equal(b.len, 0);
	assert_false(b.overflow);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.max, 10); /* the limit stays */
	assert_true(buf_puts(&b, "again"));
	assert_false(buf_puts(&b, "123456"));
	s = buf_take(&b);
	assert_string_equal(s, "again");
	free(s);
	s = buf_take(&b); /* an empty buffer gives an empty string to free */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	buf_free(&b);

	buf_init(&b, 0);
	assert_true(buf_append(&b, "", 0));
	assert_false(buf_putc(&b, 'a'));
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
	buf_free(&b); /* twice is harmless */

	/* Growth past the first allocation keeps the content. */
	buf_init(&b, 100000);
	for (int i = 0; i < 10000; i++)
		assert_true(buf_puts(&b, "0123456789"));
	assert_false(buf_putc(&b, 'x'));
	assert_int_equal(b.len, 100000);
	assert_int_equal(strlen(buf_str(&b)), 100000);
	assert_memory_equal(buf_str(&b) + 99990, "0123456789", 10);
	assert_true(b.cap <= 100001);
	buf_free(&b);
}

/* ---- csv ---- */

/* Read all of text[0..len) and describe it: one "L<line>:f1|f2" line per
 * row, CR and LF inside fields shown as \r and \n; on a read error the
 * rows so far and then "ERR <message>". The caller frees the result. */
static char *csv_read(const char *text, size_t len)
{
	buf d;
	buf_init(&d, 1 << 20);
	char *copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = 0;
	FILE *f = fmemopen(copy, len ? len : 1, "r");
	assert_non_null(f);
	if (len == 0) /* fmemopen wants a size: use up the one byte */
		fgetc(f);
	csv_reader r;
	csv_open(&r, f);
	csv_row row;
	char err[256];
	int rc;
	while ((rc = csv_next(&r, &row, err, sizeof err)) == 1) {
		buf_fmt(&d, "L%d:", row.line);
		for (size_t i = 0; i < row.n; i++) {
			if (i)
				buf_putc(&d, '|');
			for (const char *p = row.fields[i]; *p; p++)
				buf_puts(&d, *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : (char[2]){ *p, 0 });
		}
		buf_putc(&d, '\n');
		csv_row_free(&row);
	}
	if (rc < 0)
		buf_fmt(&d, "ERR %s", err);
	fclose(f);
	free(copy);
	return buf_take(&d);
}

#define CSV_EXPECT(text, want) do { \
		char *got_ = csv_read((text), sizeof(text) - 1); \
		bool same_ = strcmp(got_, (want)) == 0; \
		if (!same_) \
			print_error("input %s\n got: %s\nwant: %s\n", #text, got_, (want)); \
		free(got_); \
		assert_true(same_); \
	} while (0)

/* ini_read_file: a whole text file, or a message naming the path (and the
 * line of a NUL byte, which would otherwise cut the text short unseen). */
static void test_ini_read_file(void **state)
{
	(void)state;
	char err[512], want[128];
	assert_null(ini_read_file("/nonexistent/pingyi.rules", 1024, err, sizeof err));
	assert_true(str_starts(err, "/nonexistent/pingyi.rules: cannot open: "));

	char path[] = "/tmp/test_ini.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char body[] = "[grade a]\nmin = 1\nname = \0x\n";
	assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
	close(fd);
	assert_null(ini_read_file(path, 1024, err, sizeof err));
	fmt_into(want, sizeof want, "%s:3: NUL byte", path);
	assert_true(str_starts(err, want));
	assert_null(ini_read_file(path, 8, err, sizeof err));
	fmt_into(want, sizeof want, "%s: larger than", path);
	assert_true(str_starts(err, want));

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[grade a]\nmin = 1\n", f);
	fclose(f);
	char *text = ini_read_file(path, 1024, err, sizeof err);
	assert_string_equal(text, "[grade a]\nmin = 1\n");
	free(text);
	unlink(path);
}

static void test_csv_basic(void **state)
{
	(void)state;
	CSV_EXPECT("", "");
	CSV_EXPECT("a,b\nc,d\n", "L1:a|b\nL2:c|d\n");
	CSV_EXPECT("a,b\r\nc,d\r\n", "L1:a|b\nL2:c|d\n");
	CSV_EXPECT("a,b\r\nc,d", "L1:a|b\nL2:c|d\n");     /* no final line break */
	CSV_EXPECT("a\rb\r", "L1:a\nL2:b\n");               /* old Mac line ends */
	CSV_EXPECT("a,,b\n,\n", "L1:a||b\nL2:|\n");
	CSV_EXPECT("\"\"\n", "L1:\n");                      /* one empty field is a row */
	CSV_EXPECT(" a , b \n", "L1: a | b \n");            /* spaces are data */
	CSV_EXPECT("id,parent,kind,name_zh,name_en\nparty,,committee,党委,Party Committee\n",
		"L1:id|parent|kind|name_zh|name_en\nL2:party||committee|党委|Party Committee\n");
}

static void test_csv_bom(void **state)
{
	(void)state;
	CSV_EXPECT("\xEF\xBB\xBFid,name\r\n1,a\r\n", "L1:id|name\nL2:1|a\n");
	CSV_EXPECT("\xEF\xBB\xBF", "");
	CSV_EXPECT("\xEF\xBB\xBF\r\n", "");
	/* Only the first three bytes of the file can be a BOM. */
	CSV_EXPECT("a\n\xEF\xBB\xBF" "b\n", "L1:a\nL2:\xEF\xBB\xBF" "b\n");
	/* A file that starts with 0xEF but no BOM loses nothing. */
	CSV_EXPECT("＂x＂,y\n", "L1:＂x＂|y\n");                /* EF BC 82 */
	CSV_EXPECT("\xEF\xBB\xBE,y\n", "L1:\xEF\xBB\xBE|y\n");  /* U+FEFE: two BOM bytes match */
	CSV_EXPECT("\xEF\xBF\xBF\n", "L1:\xEF\xBF\xBF\n");
	CSV_EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF" "a\n", "L1:\xEF\xBB\xBF" "a\n"); /* a second BOM is data */
	CSV_EXPECT("\xEF", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
	CSV_EXPECT("\xEF\xBB", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
}

static void test_csv_quotes(void **state)
{
	(void)state;
	CSV_EXPECT("\"a,b\",\"say \"\"hi\"\"\",\"\"\n", "L1:a,b|say \"hi\"|\n");
	CSV_EXPECT("\"\"\"\"\n", "L1:\"\n");
	CSV_EXPECT("\"a\",b\n\"c\"\n", "L1:a|b\nL2:c\n");
	CSV_EXPECT("\"a\"", "L1:a\n");
	CSV_EXPECT("\"a\"\r\n\"b\",\"\"\r\n", "L1:a\nL2:b|\n");
	CSV_EXPECT("\"line1\nline2\",x\n", "L1:line1\\nline2|x\n");
	CSV_EXPECT("\"line1\r\nline2\",x\r\n", "L1:line1\\r\\nline2|x\n");
	/* Rows after a multi-line field carry the line they start on. */
	CSV_EXPECT("h\n\"x\ny\nz\",w\nnext\n\nlast\n",
		"L1:h\nL2:x\\ny\\nz|w\nL5:next\nL7:last\n");
	CSV_EXPECT("a,\"1\r\n2\r\n3\"\r\nb\r\n", "L1:a|1\\r\\n2\\r\\n3\nL4:b\n");
}

static void test_csv_blank_lines(void **state)
{
	(void)state;
	CSV_EXPECT("\n\na\n\r\n\nb\n\n", "L3:a\nL6:b\n");
	CSV_EXPECT("\r\n\r\n", "");
}

static void test_csv_errors(void **state)
{
	(void)state;
	CSV_EXPECT("a\n\"b,c\nd\n", "L1:a\nERR line 2: a quoted field is not closed");
	CSV_EXPECT("x\n\ny,\"z", "L1:x\nERR line 3: a quoted field is not closed");
	CSV_EXPECT("\"a\"b\n", "ERR line 1: text after a closing quote "
		"(write \"\" for a quote inside a quoted field)");
	CSV_EXPECT("ok\n\"a\" ,b\n", "L1:ok\nERR line 2: text after a closing quote "
		"(write \"\" for a quote inside a quoted field)");
	CSV_EXPECT("a\n\"m\nl\"\n\"q\"x\n", "L1:a\nL2:m\\nl\nERR line 4: text after a closing quote "
		"(write \"\" for a quote inside a quoted field)");
	CSV_EXPECT("a\nb,\xff\n", "L1:a\nERR line 2: the text is not valid UTF-8 (save the file as UTF-8)");
	CSV_EXPECT("\xC0\xAF\n", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
	/* GBK, as Excel saves a Chinese sheet by default. */
	CSV_EXPECT("\xB5\xB3\xCE\xAF\n", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
	CSV_EXPECT("a\x01" "b\n", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
	CSV_EXPECT("a\0b\n", "ERR line 1: the text is not valid UTF-8 (save the file as UTF-8)");
}

/* A line of n fields, each len bytes of c; caller frees. */
static char *csv_line(size_t n, size_t len, char c, bool quoted)
{
	buf b;
	buf_init(&b, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(&b, ',');
		if (quoted)
			buf_putc(&b, '"');
		for (size_t k = 0; k < len; k++)
			buf_putc(&b, c);
		if (quoted)
			buf_putc(&b, '"');
	}
	buf_puts(&b, "\n");
	return buf_take(&b);
}

/* Reads text and checks its description starts with want_prefix. */
static void csv_expect_prefix(const char *text, const char *want_prefix)
{
	char *got = csv_read(text, strlen(text));
	bool same = strncmp(got, want_prefix, strlen(want_prefix)) == 0;
	if (!same)
		print_error("got: %.200s\nwant: %s...\n", got, want_prefix);
	free(got);
	assert_true(same);
}

static void test_csv_limits(void **state)
{
	(void)state;
	char *s = csv_line(1, CSV_MAX_FIELD, 'x', false);
	csv_expect_prefix(s, "L1:xxxx");
	free(s);
	s = csv_line(1, CSV_MAX_FIELD, 'x', true);
	csv_expect_prefix(s, "L1:xxxx");
	free(s);
	s = csv_line(CSV_MAX_FIELDS, 1, 'y', false);
	csv_expect_prefix(s, "L1:y|y|y");
	free(s);
	s = csv_line(CSV_MAX_FIELDS, 0, 'y', false);
	csv_expect_prefix(s, "L1:|||");
	free(s);
}

static void test_csv_limit_errors(void **state)
{
	(void)state;
	char *s = csv_line(1, CSV_MAX_FIELD + 1, 'x', false);
	csv_expect_prefix(s, "ERR line 1: a field is longer than 1024 bytes");
	free(s);
	s = csv_line(3, CSV_MAX_FIELD + 1, 'x', true);
	csv_expect_prefix(s, "ERR line 1: a field is longer than 1024 bytes");
	free(s);
	s = csv_line(CSV_MAX_FIELDS + 1, 1, 'y', false);
	csv_expect_prefix(s, "ERR line 1: too many fields");
	free(s);
	s = csv_line(CSV_MAX_FIELDS + 1, 0, 'y', false);
	csv_expect_prefix(s, "ERR line 1: too many fields");
	free(s);
	csv_expect_prefix("a,b,\xff,c\n", "ERR line 1: the text is not valid UTF-8");
	/* A multi-byte character straddling the limit does not slip through. */
	buf b;
	buf_init(&b, 4096);
	for (int i = 0; i < CSV_MAX_FIELD - 1; i++)
		buf_putc(&b, 'x');
	buf_puts(&b, "中\n");
	csv_expect_prefix(buf_str(&b), "ERR line 1: a field is longer than 1024 bytes");
	buf_free(&b);
}

/* Every error path of csv_next frees what it built. LeakSanitizer is asked
 * now, not only at exit, so that a leak fails this test by name; it runs
 * before the other error cases so that the leaks it sees are its own. */
static void test_csv_errors_free_memory(void **state)
{
	(void)state;
	static const char *const inputs[] = {
		"\"a\"b\n", "a,\"b\n", "a,\xff\n", "ok,\x01\n",
	};
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
		csv_expect_prefix(inputs[i], "ERR line 1: ");
	char *s = csv_line(2, CSV_MAX_FIELD + 1, 'x', false);
	csv_expect_prefix(s, "ERR line 1: ");
	free(s);
	s = csv_line(CSV_MAX_FIELDS + 1, 1, 'y', false);
	csv_expect_prefix(s, "ERR line 1: ");
	free(s);
#ifdef HAVE_LSAN
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_ok),
		cmocka_unit_test(test_kv_errors),
		cmocka_unit_test(test_kv_take),
		cmocka_unit_test(test_utf8_valid_text),
		cmocka_unit_test(test_utf8_length_width),
		cmocka_unit_test(test_str_to_int),
		cmocka_unit_test(test_str_to_i64),
		cmocka_unit_test(test_str_to_double),
		cmocka_unit_test(test_str_to_double_decimal_only),
		cmocka_unit_test(test_str_copy_trim),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_ini_read_file),
		cmocka_unit_test(test_csv_basic),
		cmocka_unit_test(test_csv_errors_free_memory),
		cmocka_unit_test(test_csv_bom),
		cmocka_unit_test(test_csv_quotes),
		cmocka_unit_test(test_csv_blank_lines),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_limits),
		cmocka_unit_test(test_csv_limit_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
