/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * connlist.c -- the worker's list of its live connections (w->conns),
 * which conn.c links a connection into at its birth and out of at its end,
 * and the count of them the stats report.
 */
#include "config.h"

#include <stddef.h>

#include "connlist.h"
#include "state.h"

void
connlist_link(struct worker *w, struct conn *c)
{
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	w->stats.conns_open = w->nconns;
}

void
connlist_unlink(struct worker *w, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->nconns--;
	w->stats.conns_open = w->nconns;
}
