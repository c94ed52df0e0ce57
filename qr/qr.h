/* qr.h - QR codes for unit URLs, as PNG and SVG files.
 *
 * Codes are encoded at error-correction level M with a 4-module quiet zone
 * (DESIGN.md §5). Which URL goes in a code, and the file names, are the
 * command line's business (cli/); printing posters and slips will live here
 * too. This library never logs and never exits. */
#ifndef PINGYI_QR_H
#define PINGYI_QR_H

#include <stddef.h>

enum qr_format { QR_PNG, QR_SVG };

/* Encode text (non-empty, as 8-bit bytes) and write it to path, black on
 * white. PNG: scale pixels per module, 1-bit greyscale. SVG: a white rect
 * and one path, viewBox in modules, scale sets width/height. scale must be
 * 1..100. The file is written beside path and renamed into place, so a
 * failure leaves path as it was and no temporary file behind.
 * Returns 0, or -1 with err set ("cannot write PATH: reason", "cannot
 * encode text as a QR code: reason", or why the arguments are refused).
 * err is plain text naming path as given: escape it for its channel. */
int qr_write(const char *text, enum qr_format format, int scale, const char *path,
	char *err, size_t errsize);

/* The QR version (1..40) text encodes to at level M, or -1 when it is
 * empty or too long for one code. */
int qr_version(const char *text);

#endif
