/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sweep.c -- what a worker does to all its connections at once: the ends
 * of a drain (worker.c's timer, when the worker stops) and renegotiation
 * requests (`moatctl rekey`, a certificate change).  Each connection is
 * conn.c's to act on (conn_drain(), conn_ask()); this file walks the list
 * (connlist.c), which an end may shorten under it.
 */
#include "config.h"

#include "conn.h"
#include "log.h"
#include "state.h"
#include "sweep.h"

void
sweep_drain(struct worker *w, int hard)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;		/* conn_drain() may free c */
		conn_drain(c, hard);
	}
}

/* Every live connection of one frontend (or of all). */
unsigned
sweep_rekey(struct worker *w, const struct worker_frontend *only,
    const char *why)
{
	struct conn *c;
	unsigned n = 0;

	for (c = w->conns; c != NULL; c = c->next)
		if (only == NULL || c->wf == only)
			n += (unsigned)conn_ask(c, why);
	log_info("reneg: %s: %u connection(s) asked to renegotiate", why, n);
	return n;
}
