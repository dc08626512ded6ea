/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * answer.c -- a growing buffer for the answer to a control command, and
 * JSON string escaping.
 *
 * An answer never grows past its max (control.c sets what moatctl reads
 * at most): text that would not fit is dropped, as is text that finds no
 * memory, so a command always answers with what it could say rather than
 * fail half-way.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"

void
answer_init(struct answer *a, size_t max)
{
	memset(a, 0, sizeof(*a));
	a->max = max;
}

void
answer_printf(struct answer *a, const char *fmt, ...)
{
	va_list ap;
	size_t need, cap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	need = a->len + (size_t)n + 1;
	if (need > a->max)
		return;
	if (need > a->cap) {
		cap = a->cap ? a->cap : 4096;
		while (cap < need)
			cap *= 2;
		if ((p = realloc(a->buf, cap)) == NULL)
			return;
		a->buf = p;
		a->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(a->buf + a->len, a->cap - a->len, fmt, ap);
	va_end(ap);
	a->len += (size_t)n;
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
void
answer_json_str(struct answer *a, const char *s)
{
	answer_printf(a, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			answer_printf(a, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			answer_printf(a, "\\u%04x", (unsigned)(unsigned char)*s);
		else
			answer_printf(a, "%c", *s);
	}
	answer_printf(a, "\"");
}

void
answer_free(struct answer *a)
{
	free(a->buf);
	a->buf = NULL;
	a->len = a->cap = 0;
}
