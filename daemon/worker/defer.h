/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * defer.h -- run a connection's pump again after the loop has polled
 * (defer.c).
 *
 * A connection that used up one wakeup's budget (PROXY_ROUNDS rounds, or
 * NOISE_PER_TURN records without data) must let the others run before it
 * goes on.  ev_feed_event() does not do that: libev invokes events fed
 * while it invokes others in the same pass, before it polls again, so the
 * connection would be back at once, and again, for as long as it has
 * work.  A deferred connection runs again in the loop's next iteration,
 * after the poll, together with every event that poll found.
 */
#ifndef MOAT_DEFER_H
#define MOAT_DEFER_H

#include "state.h"

/* defer.c */
void	defer_init(struct worker *w);
void	defer_conn(struct conn *c, int backend_side);
void	defer_forget(struct conn *c);

#endif
