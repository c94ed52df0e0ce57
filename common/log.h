/* log.h - one line per event on stderr, for the programs (never libraries).
 *
 * Lines look like "2026-11-21T05:30:00Z pingyi-collector info: message".
 * Never pass secrets, ballot codes, IP addresses or ballot contents. */
#ifndef PINGYI_LOG_H
#define PINGYI_LOG_H

void log_init(const char *program);
/* printf-style format (trusted literal); arguments as for printf. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
