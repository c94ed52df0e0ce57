/* test_qr.c - QR codes as a phone would read them (qr/).
 *
 * Every code is checked with a real decoder, zbarimg, not against our own
 * idea of what the modules should be. The SVG is turned back into modules by
 * a strict reader of the path syntax qr.c writes, and those modules must
 * match the PNG's and decode too; rsvg-convert is used as well when the
 * machine has it. The failure paths check that nothing is left behind and
 * that an existing file survives a failed write. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <png.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fmt.h"
#include "common/mem.h"
#include "qr/qr.h"

#define SHORT_URL "http://127.0.0.1:8080/u/k7m2p9qa"
#define QUIET 4

static char *dir; /* a fresh temporary directory for each test */

static int setup(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/test_qr.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	dir = xstrdup(tmpl);
	return 0;
}

/* Removes the directory with whatever a test left in it (one level, plus
 * empty subdirectories). */
static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char *p = fmt_alloc("%s/%s", dir, e->d_name);
			if (unlink(p) < 0)
				rmdir(p);
			free(p);
		}
		closedir(d);
	}
	int rc = rmdir(dir);
	free(dir);
	dir = NULL;
	return rc;
}

static char *in_dir(const char *name)
{
	return fmt_alloc("%s/%s", dir, name);
}

/* The names in the test directory, sorted and separated by spaces. */
static char *dir_listing(void)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	assert_true(n >= 0);
	buf b;
	buf_init(&b, 1 << 16);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
			buf_fmt(&b, "%s%s", b.len ? " " : "", names[i]->d_name);
		free(names[i]);
	}
	free(names);
	return buf_take(&b);
}

static void assert_dir_holds(const char *expected)
{
	char *got = dir_listing();
	assert_string_equal(got, expected);
	free(got);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	buf b;
	buf_init(&b, 64 << 20);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		assert_true(buf_append(&b, chunk, n));
	assert_false(ferror(f));
	fclose(f);
	if (len)
		*len = b.len;
	return buf_take(&b);
}

/* What zbarimg reads from an image file: the text of exactly one symbol, or
 * NULL when it finds none. The paths are ours (mkdtemp), so quoting them in
 * single quotes is enough. */
static char *zbar_decode(const char *path)
{
	char *cmd = fmt_alloc("zbarimg --quiet --raw '%s' 2>/dev/null", path);
	FILE *p = popen(cmd, "r");
	free(cmd);
	assert_non_null(p);
	buf b;
	buf_init(&b, 1 << 16);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		buf_append(&b, chunk, n);
	int status = pclose(p);
	if (status != 0) {
		buf_free(&b);
		return NULL;
	}
	/* --raw ends each symbol with a newline; one symbol means one. */
	char *s = buf_take(&b);
	size_t len = strlen(s);
	assert_true(len > 0 && s[len - 1] == '\n');
	s[len - 1] = '\0';
	assert_null(strchr(s, '\n'));
	return s;
}

/* A grey image: one byte a pixel, 0 black and 255 white. */
struct image {
	unsigned width, height;
	unsigned char *px;
};

static struct image read_png(const char *path)
{
	png_image img;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	assert_true(png_image_begin_read_from_file(&img, path));
	img.format = PNG_FORMAT_GRAY;
	struct image out = { img.width, img.height, xmalloc(PNG_IMAGE_SIZE(img)) };
	assert_true(png_image_finish_read(&img, NULL, out.px, 0, NULL));
	return out;
}

static unsigned char pixel(const struct image *im, unsigned x, unsigned y)
{
	return im->px[(size_t)y * im->width + x];
}

/* Modules per side of a code of this version, quiet zone included. */
static unsigned side_modules(int version)
{
	return (unsigned)(17 + 4 * version + 2 * QUIET);
}

/* Checks what a PNG must look like for text at scale: square, the right
 * size, pure black and white, a white quiet zone of 4 modules, and every
 * module a solid scale x scale square. */
static void check_png_layout(const char *path, const char *text, int scale)
{
	struct image im = read_png(path);
	unsigned n = side_modules(qr_version(text));
	assert_int_equal(im.width, n * (unsigned)scale);
	assert_int_equal(im.height, im.width);
	unsigned quiet = QUIET * (unsigned)scale;
	for (unsigned y = 0; y < im.height; y++) {
		for (unsigned x = 0; x < im.width; x++) {
			unsigned char v = pixel(&im, x, y);
			assert_true(v == 0 || v == 255);
			if (x < quiet || y < quiet || x >= im.width - quiet || y >= im.height - quiet)
				assert_int_equal(v, 255);
			unsigned mx = x / (unsigned)scale * (unsigned)scale;
			unsigned my = y / (unsigned)scale * (unsigned)scale;
			assert_int_equal(v, pixel(&im, mx, my));
		}
	}
	/* The top-left finder pattern starts right after the quiet zone. */
	assert_int_equal(pixel(&im, quiet, quiet), 0);
	assert_int_equal(pixel(&im, quiet - 1, quiet), 255);
	assert_int_equal(pixel(&im, quiet, quiet - 1), 255);
	free(im.px);
}

static char *long_url(void)
{
	buf b;
	buf_init(&b, 4096);
	buf_fmt(&b, "https://pingyi.example.edu.cn/u/k7m2p9qa?form=teaching-2024-autumn&lang=zh-CN");
	for (int i = 0; b.len < 300; i++)
		buf_fmt(&b, "&course%d=CS%d-section-%d", i, 1000 + i * 37, i % 7);
	return buf_take(&b);
}

static void test_png_decodes(void **state)
{
	(void)state;
	char *lng = long_url();
	const char *texts[] = { SHORT_URL, lng };
	const int scales[] = { 3, 8 };
	char err[256];
	for (size_t t = 0; t < 2; t++) {
		for (size_t s = 0; s < 2; s++) {
			char *path = in_dir("code.png");
			assert_int_equal(qr_write(texts[t], QR_PNG, scales[s], path, err, sizeof err), 0);
			char *got = zbar_decode(path);
			assert_non_null(got);
			assert_string_equal(got, texts[t]);
			check_png_layout(path, texts[t], scales[s]);
			free(got);
			free(path);
			assert_dir_holds("code.png");
		}
	}
	assert_true(qr_version(lng) > qr_version(SHORT_URL));
	free(lng);
}

/* Reads the path data qr.c writes ("M x y h n v1 h-n z" per run, nothing
 * else) into a grid of n x n modules, failing on anything unexpected and on
 * runs that overlap or leave the grid. */
static unsigned char *svg_modules(const char *d, unsigned n)
{
	unsigned char *grid = xcalloc((size_t)n * n, 1);
	const char *p = d;
	while (*p != '"') {
		char *end;
		long v[4];
		const char *lead[4] = { "M", " ", "h", "v1h-" };
		for (int i = 0; i < 4; i++) {
			size_t k = strlen(lead[i]);
			assert_memory_equal(p, lead[i], k);
			p += k;
			assert_true(*p >= '0' && *p <= '9');
			errno = 0;
			v[i] = strtol(p, &end, 10);
			assert_int_equal(errno, 0);
			p = end;
		}
		assert_int_equal(*p++, 'z');
		long x = v[0], y = v[1], run = v[2];
		assert_int_equal(v[3], run);
		assert_true(run >= 1 && x >= QUIET && y >= QUIET);
		assert_true(x + run <= (long)n - QUIET && y < (long)n - QUIET);
		for (long i = x; i < x + run; i++) {
			assert_int_equal(grid[(size_t)y * n + (size_t)i], 0);
			grid[(size_t)y * n + (size_t)i] = 1;
		}
	}
	return grid;
}

/* Writes modules as a PGM image (which zbarimg reads), 4 pixels a module. */
static void write_pgm(const char *path, const unsigned char *grid, unsigned n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fprintf(f, "P5\n%u %u\n255\n", n * 4, n * 4);
	for (unsigned y = 0; y < n * 4; y++)
		for (unsigned x = 0; x < n * 4; x++)
			fputc(grid[(size_t)(y / 4) * n + x / 4] ? 0 : 255, f);
	assert_int_equal(fclose(f), 0);
}

static void check_svg(const char *text, int scale)
{
	char err[256];
	char *svg_path = in_dir("code.svg");
	char *png_path = in_dir("code.png");
	char *pgm_path = in_dir("code.pgm");
	assert_int_equal(qr_write(text, QR_SVG, scale, svg_path, err, sizeof err), 0);
	assert_int_equal(qr_write(text, QR_PNG, scale, png_path, err, sizeof err), 0);

	char *svg = slurp(svg_path, NULL);
	unsigned n = side_modules(qr_version(text));
	assert_true(strncmp(svg, "<svg ", 5) == 0);
	char *want = fmt_alloc("width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\"",
		n * (unsigned)scale, n * (unsigned)scale, n, n);
	assert_non_null(strstr(svg, want));
	free(want);
	assert_non_null(strstr(svg, "shape-rendering=\"crispEdges\""));
	want = fmt_alloc("<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/>", n, n);
	assert_non_null(strstr(svg, want));
	free(want);
	const char *path_el = strstr(svg, "<path ");
	assert_non_null(path_el);
	assert_null(strstr(path_el + 1, "<path"));
	size_t len = strlen(svg);
	assert_true(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0);

	/* The SVG's modules are the PNG's modules, and they decode. */
	const char *d = strstr(path_el, " d=\"");
	assert_non_null(d);
	unsigned char *grid = svg_modules(d + 4, n);
	struct image im = read_png(png_path);
	for (unsigned y = 0; y < n; y++)
		for (unsigned x = 0; x < n; x++)
			assert_int_equal(grid[(size_t)y * n + x],
				pixel(&im, x * (unsigned)scale, y * (unsigned)scale) == 0);
	free(im.px);
	write_pgm(pgm_path, grid, n);
	char *got = zbar_decode(pgm_path);
	assert_non_null(got);
	assert_string_equal(got, text);
	free(got);
	free(grid);

	/* And, where a real SVG renderer is at hand, what it draws decodes. */
	if (system("command -v rsvg-convert >/dev/null 2>&1") == 0) {
		char *cmd = fmt_alloc("rsvg-convert -b white -o '%s' '%s'", png_path, svg_path);
		assert_int_equal(system(cmd), 0);
		free(cmd);
		got = zbar_decode(png_path);
		assert_non_null(got);
		assert_string_equal(got, text);
		free(got);
	}
	free(svg);
	free(svg_path);
	free(png_path);
	free(pgm_path);
}

static void test_svg(void **state)
{
	(void)state;
	check_svg(SHORT_URL, 8);
	char *lng = long_url();
	check_svg(lng, 3);
	free(lng);
}

static void test_version(void **state)
{
	(void)state;
	int v = qr_version("https://pingyi.example.edu.cn/u/k7m2p9qa");
	assert_true(v >= 1 && v <= 4);
	/* Version 1 holds 14 bytes at level M (17 at L, 11 at Q): the boundary
	 * pins the level. */
	assert_int_equal(qr_version("http://a.cn/u/"), 1);
	assert_int_equal(qr_version("http://a.cn/u/a"), 2);
	assert_int_equal(qr_version(""), -1);
	assert_int_equal(qr_version(NULL), -1);
	char *huge = xmalloc(4001);
	memset(huge, 'a', 4000);
	huge[4000] = '\0';
	assert_int_equal(qr_version(huge), -1);
	free(huge);
}

static void test_overwrites_existing_file(void **state)
{
	(void)state;
	char err[256];
	char *path = in_dir("code.png");
	assert_int_equal(qr_write("http://127.0.0.1:8080/u/first", QR_PNG, 4, path, err, sizeof err), 0);
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, path, err, sizeof err), 0);
	char *got = zbar_decode(path);
	assert_non_null(got);
	assert_string_equal(got, SHORT_URL);
	free(got);
	free(path);
	assert_dir_holds("code.png");
}

static void test_unwritable_directory(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, "/nonexistent-dir/x.png", err, sizeof err), -1);
	assert_string_equal(err, "cannot write /nonexistent-dir/x.png: No such file or directory");
	assert_int_equal(access("/nonexistent-dir", F_OK), -1);
	assert_int_equal(qr_write(SHORT_URL, QR_SVG, 4, "/nonexistent-dir/x.svg", err, sizeof err), -1);
	assert_string_equal(err, "cannot write /nonexistent-dir/x.svg: No such file or directory");
}

/* The image is written in full and only the rename fails: the temporary
 * file must not stay behind. */
static void test_path_is_a_directory(void **state)
{
	(void)state;
	char err[256] = "";
	char *path = in_dir("sub");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, path, err, sizeof err), -1);
	char *want = fmt_alloc("cannot write %s: %s", path, strerror(EISDIR));
	assert_string_equal(err, want);
	free(want);
	assert_dir_holds("sub");
	free(path);
}

/* A write that fails halfway (here the file size limit standing in for a
 * full disk) leaves the old file as it was and no temporary file. */
static void test_failed_write_keeps_old_file(void **state)
{
	(void)state;
	char err[256] = "";
	char *path = in_dir("code.png");
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, path, err, sizeof err), 0);
	size_t old_len;
	char *old = slurp(path, &old_len);

	struct rlimit saved, small;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small = saved;
	small.rlim_cur = 100;
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = qr_write("http://127.0.0.1:8080/u/second", QR_PNG, 4, path, err, sizeof err);
	int rc_svg = qr_write("http://127.0.0.1:8080/u/second", QR_SVG, 4, path, err, sizeof err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, old_handler);

	assert_int_equal(rc, -1);
	assert_int_equal(rc_svg, -1);
	char *want = fmt_alloc("cannot write %s: %s", path, strerror(EFBIG));
	assert_string_equal(err, want);
	free(want);
	size_t now_len;
	char *now = slurp(path, &now_len);
	assert_int_equal(now_len, old_len);
	assert_memory_equal(now, old, old_len);
	assert_dir_holds("code.png");
	free(now);
	free(old);
	free(path);
}

static void test_bad_scale(void **state)
{
	(void)state;
	char err[256];
	char *path = in_dir("code.png");
	const int bad[] = { 0, -1, 101, INT_MIN };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(qr_write(SHORT_URL, QR_PNG, bad[i], path, err, sizeof err), -1);
		assert_non_null(strstr(err, "scale must be from 1 to 100"));
	}
	assert_int_equal(qr_write(SHORT_URL, QR_SVG, 0, path, err, sizeof err), -1);
	assert_dir_holds("");
	/* The bounds themselves are allowed. */
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 1, path, err, sizeof err), 0);
	assert_int_equal(qr_write(SHORT_URL, QR_SVG, 100, path, err, sizeof err), 0);
	free(path);
}

static void test_text_refused(void **state)
{
	(void)state;
	char err[256];
	char *path = in_dir("code.png");
	assert_int_equal(qr_write("", QR_PNG, 4, path, err, sizeof err), -1);
	assert_string_equal(err, "cannot encode text as a QR code: the text is empty");
	assert_int_equal(qr_write(NULL, QR_SVG, 4, path, err, sizeof err), -1);
	assert_string_equal(err, "cannot encode text as a QR code: the text is empty");

	/* Level M holds at most 2331 bytes in one code. */
	char *huge = xmalloc(4001);
	memset(huge, 'a', 4000);
	huge[4000] = '\0';
	assert_int_equal(qr_write(huge, QR_PNG, 4, path, err, sizeof err), -1);
	assert_string_equal(err, "cannot encode text as a QR code: 4000 bytes is too long for one code");
	free(huge);
	assert_dir_holds("");
	free(path);
}

/* A short error buffer gets a truncated, terminated message. */
static void test_short_error_buffer(void **state)
{
	(void)state;
	char err[8];
	memset(err, 'x', sizeof err);
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, "/nonexistent-dir/x.png", err, sizeof err), -1);
	assert_string_equal(err, "cannot ");
	assert_int_equal(qr_write(SHORT_URL, QR_PNG, 4, "/nonexistent-dir/x.png", NULL, 0), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_png_decodes),
		T(test_svg),
		T(test_version),
		T(test_overwrites_existing_file),
		T(test_unwritable_directory),
		T(test_path_is_a_directory),
		T(test_failed_write_keeps_old_file),
		T(test_bad_scale),
		T(test_text_refused),
		T(test_short_error_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
