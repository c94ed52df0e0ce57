/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static const char *program_name = "pingyi";

void log_init(const char *program) { program_name = program; }

__attribute__((format(printf, 2, 0)))
static void vlog(const char *level, const char *fmt, va_list ap)
{
	char stamp[32], line[1024];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(line, sizeof line, fmt, ap);
	/* One fprintf call per line keeps lines whole across threads. */
	fprintf(stderr, "%s %s %s: %s\n", stamp, program_name, level, line);
}

#define LOG_AT(name, level) \
	void name(const char *fmt, ...) \
	{ \
		va_list ap; \
		va_start(ap, fmt); \
		vlog(level, fmt, ap); \
		va_end(ap); \
	}

LOG_AT(log_info, "info")
LOG_AT(log_warn, "warn")
LOG_AT(log_error, "error")
