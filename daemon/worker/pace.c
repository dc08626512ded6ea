/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pace.c -- how many TLS 1.2 renegotiations a worker has in flight.
 *
 * At most rekey-concurrency at once: a HelloRequest queued until its
 * answer is over (done, refused, ignored) or the connection ends.  Each
 * answer costs keyd a signature, and a `moatctl rekey` or a rotation with
 * rekey-on-cert-change would otherwise ask every connection at once --
 * thousands of signatures, those past keyd-timeout failed.  The rest wait
 * in order for a slot.  A KeyUpdate (TLS 1.3) costs nothing and is not
 * paced.
 *
 * Bookkeeping only: conn.c sends what a slot lets through, and is the only
 * caller.
 */
#include "config.h"

#include <stddef.h>

#include "conf.h"
#include "reneg.h"
#include "state.h"
#include "pace.h"

static void
pace_enqueue(struct conn *c)
{
	struct worker *w = c->w;

	c->reneg_waiting = 1;
	c->reneg_wait_next = NULL;
	if (w->reneg_wait_tail != NULL)
		w->reneg_wait_tail->reneg_wait_next = c;
	else
		w->reneg_wait_head = c;
	w->reneg_wait_tail = c;
}

/*
 * c's queued request (RENEG_QUEUED): 1 if it may go out now (a KeyUpdate,
 * or a HelloRequest that got a slot), 0 if it waits for one.
 */
int
pace_take(struct conn *c)
{
	struct worker *w = c->w;

	if (c->reneg_waiting)
		return 0;
	if (c->reneg.queued != RENEG_SEND_HELLO_REQUEST || c->reneg_slot)
		return 1;
	if (w->reneg_inflight >= w->cfg->rekey_concurrency) {
		pace_enqueue(c);
		return 0;
	}
	c->reneg_slot = 1;
	w->reneg_inflight++;
	return 1;
}

/* c gives its slot back: 0, or -1 if it held none. */
int
pace_release(struct conn *c)
{
	if (!c->reneg_slot)
		return -1;
	c->reneg_slot = 0;
	c->w->reneg_inflight--;
	return 0;
}

/*
 * The next waiting connection that still wants to send and now has a
 * slot (the caller sends its request), or NULL when none can go.
 */
struct conn *
pace_next(struct worker *w)
{
	struct conn *n;

	while ((n = w->reneg_wait_head) != NULL &&
	    w->reneg_inflight < w->cfg->rekey_concurrency) {
		pace_forget(n);
		if (n->reneg.state != RENEG_QUEUED)
			continue;	/* asks for nothing any more */
		n->reneg_slot = 1;
		w->reneg_inflight++;
		return n;
	}
	return NULL;
}

/* c leaves the wait list, if it is on it (its end, or pace_next()). */
void
pace_forget(struct conn *c)
{
	struct worker *w = c->w;
	struct conn **pp, *prev = NULL;

	if (!c->reneg_waiting)
		return;
	for (pp = &w->reneg_wait_head; *pp != NULL; pp = &(*pp)->reneg_wait_next) {
		if (*pp == c) {
			*pp = c->reneg_wait_next;
			if (w->reneg_wait_tail == c)
				w->reneg_wait_tail = prev;
			break;
		}
		prev = *pp;
	}
	c->reneg_wait_next = NULL;
	c->reneg_waiting = 0;
}

/* How many connections wait for a slot (moatctl stats). */
unsigned
pace_waiting(const struct worker *w)
{
	const struct conn *c;
	unsigned n = 0;

	for (c = w->reneg_wait_head; c != NULL; c = c->reneg_wait_next)
		n++;
	return n;
}
