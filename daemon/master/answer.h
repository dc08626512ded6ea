/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer.h -- the text of one answer on the control socket, built with
 * printf and sent whole (control.c) once the command is done.  It never
 * grows past max (the protocol's limit, which control.c knows).
 */
#ifndef MOAT_ANSWER_H
#define MOAT_ANSWER_H

#include <stddef.h>

struct answer {
	char	*buf;		/* NUL-terminated; NULL while empty */
	size_t	len;
	size_t	cap;
	size_t	max;		/* len + 1 never exceeds it */
};

/* answer.c */
void	answer_init(struct answer *a, size_t max);
void	answer_printf(struct answer *a, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	answer_json_str(struct answer *a, const char *s);
void	answer_free(struct answer *a);

#endif
