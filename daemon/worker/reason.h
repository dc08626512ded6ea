/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reason.h -- why a connection ends: the first cause recorded wins.
 *
 * This is the one thing a leaf module (tls, proxy, xkey) writes about a
 * connection's end; conn.c alone decides that it ends and logs the reason.
 */
#ifndef MOAT_REASON_H
#define MOAT_REASON_H

#include <stdarg.h>

#define REASON_MAX		192u

struct reason {
	char	text[REASON_MAX];
};

/* reason.c */
void	reason_set(struct reason *r, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	reason_vset(struct reason *r, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));

#endif
