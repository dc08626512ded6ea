/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.h -- the OpenBSD-style log API shared by every moat process.
 *
 * Everything goes to stderr, one line per message, prefixed with the
 * process title; under systemd journald picks stderr up.  Sandboxed
 * processes keep the stderr they inherited, so they need no socket to log.
 * Never log key bytes.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stdarg.h>

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif

enum log_level {
	LOG_LEVEL_ERROR	= 0,
	LOG_LEVEL_WARN	= 1,
	LOG_LEVEL_INFO	= 2,
	LOG_LEVEL_DEBUG	= 3,
};

/*
 * A line a peer can cause as often as it likes (a refusal) goes through a
 * log_limit: at most per_s such lines a second are written; the first
 * one after a held-back stretch says how many were held back (*held).
 */
struct log_limit {
	double		window;		/* start of the current second */
	unsigned	n;		/* lines passed in it */
	unsigned	held;		/* held back since the last that passed */
};

/* log.c */
void	log_init(const char *title, enum log_level level);
void	log_procinit(const char *title);
void	log_setlevel(enum log_level level);
int	log_level_parse(const char *s, enum log_level *out);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
int	log_limit_pass(struct log_limit *l, double now, unsigned per_s,
	    unsigned *held);
__dead void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));
__dead void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
