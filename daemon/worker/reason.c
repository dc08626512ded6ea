/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reason.c -- the first recorded cause of a connection's end (reason.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "reason.h"

void
reason_vset(struct reason *r, const char *fmt, va_list ap)
{
	if (r->text[0] != '\0' || fmt == NULL)
		return;
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
}

void
reason_set(struct reason *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reason_vset(r, fmt, ap);
	va_end(ap);
}
