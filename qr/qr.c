/* qr.c - QR codes as PNG and SVG files; the contract is in qr.h.
 *
 * libqrencode chooses the modules; this file only lays them out, as pixels
 * through libpng or as runs in one SVG path, and puts the result in place
 * atomically. Which URL a code carries and what the files are called is
 * decided by the command line (cli/). */
#include "qr.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fmt.h"

#define QUIET 4          /* modules of white around the code, on every side */
#define SCALE_MAX 100

/* Upper bounds for a rendered file. The largest code (version 40, 177
 * modules) with alternating modules everywhere needs about 250 KB of SVG;
 * at scale 100 its uncompressed PNG pixels are about 43 MB, and deflate
 * never grows data by more than a few bytes per block. */
#define SVG_MAX ((size_t)1 << 20)
#define PNG_MAX ((size_t)64 << 20)

/* Encode text at level M. NULL with err set when it cannot be. The caller
 * frees the result with QRcode_free. */
static QRcode *encode(const char *text, char *err, size_t errsize)
{
	if (!text || !*text) {
		fmt_into(err, errsize, "cannot encode text as a QR code: the text is empty");
		return NULL;
	}
	errno = 0;
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (qr)
		return qr;
	if (errno == ERANGE)
		fmt_into(err, errsize, "cannot encode text as a QR code: %zu bytes is too long for one code",
			strlen(text));
	else
		fmt_into(err, errsize, "cannot encode text as a QR code: %s",
			strerror(errno ? errno : EINVAL));
	return NULL;
}

static bool is_dark(const QRcode *qr, int x, int y)
{
	return qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1;
}

/* ---- SVG ---------------------------------------------------------------- */

/* Coordinates are in modules, so the drawing does not depend on scale;
 * width and height alone set the size it is shown at. Each horizontal run
 * of dark modules is one closed rectangle of the path. */
static bool svg_render(const QRcode *qr, int scale, buf *out)
{
	int n = qr->width + 2 * QUIET;
	buf_fmt(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\""
		" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">\n", n * scale, n * scale, n, n);
	buf_fmt(out, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"", n, n);
	for (int y = 0; y < qr->width; y++) {
		for (int x = 0; x < qr->width; ) {
			if (!is_dark(qr, x, y)) {
				x++;
				continue;
			}
			int run = 0;
			while (x + run < qr->width && is_dark(qr, x + run, y))
				run++;
			buf_fmt(out, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET, run, run);
			x += run;
		}
	}
	buf_puts(out, "\"/>\n</svg>\n");
	return !out->overflow;
}

/* ---- PNG ---------------------------------------------------------------- */

/* Where a libpng error message goes. It is written straight into the
 * caller's buffer so that png_render has no local that changes between
 * setjmp and longjmp. */
struct png_failure {
	char *err;
	size_t errsize;
};

/* libpng reports errors by calling this, which must not return. */
static void png_on_error(png_structp png, png_const_charp msg)
{
	struct png_failure *f = png_get_error_ptr(png);
	fmt_into(f->err, f->errsize, "cannot make the PNG image: %s", msg);
	png_longjmp(png, 1);
}

/* Warnings are about the image's metadata; a library does not log them. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void png_on_write(png_structp png, png_bytep data, size_t len)
{
	if (!buf_append(png_get_io_ptr(png), data, len))
		png_error(png, "the image is too large");
}

static void png_on_flush(png_structp png)
{
	(void)png;
}

/* One pixel row for module row my (counted from the outer edge of the quiet
 * zone). In 1-bit greyscale a set bit is white, the leftmost pixel the most
 * significant bit. */
static void png_pack_row(const QRcode *qr, int my, int scale, png_bytep row, size_t rowbytes)
{
	memset(row, 0xff, rowbytes);
	int y = my - QUIET;
	if (y < 0 || y >= qr->width)
		return;
	for (int x = 0; x < qr->width; x++) {
		if (!is_dark(qr, x, y))
			continue;
		size_t px = (size_t)(x + QUIET) * (size_t)scale;
		for (size_t i = px; i < px + (size_t)scale; i++)
			row[i >> 3] &= (png_byte)~(0x80u >> (i & 7));
	}
}

/* Render into out (in memory, so that a libpng failure and a write failure
 * cannot be confused, and nothing touches the disk until the image is
 * whole). Returns 0, or -1 with err set. */
static int png_render(const QRcode *qr, int scale, buf *out, char *err, size_t errsize)
{
	struct png_failure failure = { err, errsize };
	png_uint_32 side = (png_uint_32)(qr->width + 2 * QUIET) * (png_uint_32)scale;
	size_t rowbytes = (side + 7) / 8;
	png_bytep row = malloc(rowbytes);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure,
		png_on_error, png_on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!row || !info)
		abort(); /* out of memory: what xmalloc does too */

	/* No local is assigned below this point, so all are intact after the
	 * longjmp back from png_on_error. */
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		free(row);
		return -1;
	}
	png_set_write_fn(png, out, png_on_write, png_on_flush);
	png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
		PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int my = 0; my < qr->width + 2 * QUIET; my++) {
		png_pack_row(qr, my, scale, row, rowbytes);
		for (int i = 0; i < scale; i++)
			png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return 0;
}

/* ---- Files -------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write data to a new file beside path, then rename it over path: readers
 * see the old file or the whole new one, and a failure (a full disk, a
 * file size limit) leaves path as it was and no temporary file behind. The
 * temporary file is created with O_EXCL rather than mkstemp so that it gets
 * the mode the umask gives, like any other output file. */
static int write_file(const char *path, const buf *data, char *err, size_t errsize)
{
	char *tmp = NULL;
	int fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) {
		free(tmp);
		tmp = fmt_alloc("%s.%d-%d.tmp", path, (int)getpid(), i);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	int e = fd < 0 ? errno : 0;
	if (fd >= 0) {
		if (write_all(fd, buf_str(data), data->len) < 0 || fsync(fd) < 0)
			e = errno;
		if (close(fd) < 0 && !e)
			e = errno;
		if (!e && rename(tmp, path) < 0)
			e = errno;
		if (e)
			unlink(tmp);
	}
	free(tmp);
	if (e) {
		fmt_into(err, errsize, "cannot write %s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

int qr_write(const char *text, enum qr_format format, int scale, const char *path,
	char *err, size_t errsize)
{
	if (scale < 1 || scale > SCALE_MAX) {
		fmt_into(err, errsize, "the scale must be from 1 to %d pixels per module, not %d",
			SCALE_MAX, scale);
		return -1;
	}
	if (format != QR_PNG && format != QR_SVG) {
		fmt_into(err, errsize, "unknown image format %d", (int)format);
		return -1;
	}
	if (!path || !*path) {
		fmt_into(err, errsize, "cannot write the QR code: no file name given");
		return -1;
	}
	QRcode *qr = encode(text, err, errsize);
	if (!qr)
		return -1;

	buf out;
	int rc = 0;
	if (format == QR_SVG) {
		buf_init(&out, SVG_MAX);
		if (!svg_render(qr, scale, &out)) {
			fmt_into(err, errsize, "cannot make the SVG image: it is too large");
			rc = -1;
		}
	} else {
		buf_init(&out, PNG_MAX);
		rc = png_render(qr, scale, &out, err, errsize);
	}
	QRcode_free(qr);
	if (rc == 0)
		rc = write_file(path, &out, err, errsize);
	buf_free(&out);
	return rc;
}

int qr_version(const char *text)
{
	char err[1];
	QRcode *qr = encode(text, err, sizeof err);
	if (!qr)
		return -1;
	int version = qr->version;
	QRcode_free(qr);
	return version;
}
