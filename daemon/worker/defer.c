/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * defer.c -- connections waiting for their next wakeup (defer.h says why),
 * in the order they asked: a list on the worker that an ev_check watcher
 * takes once per loop iteration, right after the poll, so each deferred
 * connection runs once per iteration, as does every polled event.  While
 * the list is not empty an ev_idle watcher is active, which only makes
 * the poll not wait.
 */
#include "config.h"

#include <ev.h>

#include "util.h"
#include "defer.h"

#define DEFER_CLIENT	1u	/* feed the client watcher */
#define DEFER_BACKEND	2u	/* feed the backend watcher */

static void
defer_check_cb(struct ev_loop *loop, ev_check *check, int revents)
{
	struct worker *w = container_of(check, struct worker, defer_check);
	struct conn *c = w->deferred, *next;

	(void)revents;
	w->deferred = w->deferred_tail = NULL;
	ev_check_stop(loop, check);
	ev_idle_stop(loop, &w->defer_idle);
	for (; c != NULL; c = next) {
		next = c->defer_next;
		c->defer_next = NULL;
		if (c->deferred & DEFER_CLIENT)
			ev_feed_event(loop, &c->cio, EV_CUSTOM);
		if (c->deferred & DEFER_BACKEND)
			ev_feed_event(loop, &c->bio, EV_CUSTOM);
		c->deferred = 0;
	}
}

/* Active only to keep the poll from waiting while connections are due. */
static void
defer_idle_cb(struct ev_loop *loop, ev_idle *idle, int revents)
{
	(void)loop;
	(void)idle;
	(void)revents;
}

void
defer_init(struct worker *w)
{
	ev_check_init(&w->defer_check, defer_check_cb);
	ev_idle_init(&w->defer_idle, defer_idle_cb);
	w->deferred = w->deferred_tail = NULL;
}

/* Run c's client (or backend) side again once the loop has polled. */
void
defer_conn(struct conn *c, int backend_side)
{
	struct worker *w = c->w;

	if (c->deferred == 0) {
		if (w->deferred_tail != NULL)
			w->deferred_tail->defer_next = c;
		else
			w->deferred = c;
		w->deferred_tail = c;
		c->defer_next = NULL;
	}
	c->deferred |= backend_side ? DEFER_BACKEND : DEFER_CLIENT;
	ev_check_start(w->loop, &w->defer_check);
	ev_idle_start(w->loop, &w->defer_idle);
}

/* c is going away: out of the list. */
void
defer_forget(struct conn *c)
{
	struct worker *w = c->w;
	struct conn **pp, *prev = NULL;

	if (c->deferred == 0)
		return;
	for (pp = &w->deferred; *pp != NULL; prev = *pp, pp = &(*pp)->defer_next)
		if (*pp == c) {
			*pp = c->defer_next;
			if (w->deferred_tail == c)
				w->deferred_tail = prev;
			break;
		}
	c->defer_next = NULL;
	c->deferred = 0;
	if (w->deferred == NULL) {
		ev_check_stop(w->loop, &w->defer_check);
		ev_idle_stop(w->loop, &w->defer_idle);
	}
}
