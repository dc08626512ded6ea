/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.c -- stderr logging with a process title and a level.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static char		log_title[64] = "moat";
static enum log_level	log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *title, enum log_level level)
{
	log_procinit(title);
	log_level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_procinit(const char *title)
{
	if (title != NULL)
		snprintf(log_title, sizeof(log_title), "%s", title);
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	unsigned i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

/*
 * May a rate-limited line be written now (log.h)?  1, with *held the
 * number held back before it; 0 when it is held back.  l == NULL: always.
 */
int
log_limit_pass(struct log_limit *l, double now, unsigned per_s,
    unsigned *held)
{
	*held = 0;
	if (l == NULL)
		return 1;
	if (now - l->window >= 1.0 || now < l->window) {
		l->window = now;
		l->n = 0;
	}
	if (l->n >= per_s) {
		l->held++;
		return 0;
	}
	l->n++;
	*held = l->held;
	l->held = 0;
	return 1;
}

/* One write(2) per line, so lines from several processes do not interleave. */
static void __attribute__((format(printf, 2, 0)))
vlog(enum log_level level, const char *fmt, va_list ap, const char *errstr)
{
	char line[2048];
	int n, m;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_title,
	    (long)getpid(), level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n = (size_t)n + (size_t)m >= sizeof(line) - 1 ? (int)sizeof(line) - 2 :
	    n + m;
	if (errstr != NULL)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", errstr);
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, strerror(saved));
	va_end(ap);
	_exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	_exit(1);
}
