/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * noise.h -- records that carry no data (noise.c).
 *
 * A warning alert or a refused ClientHello costs the worker a decryption
 * and a decision and moves no byte, so the buffers that bound data do not
 * bound it: one client could keep the loop on its records alone.  The
 * pump reads at most NOISE_PER_TURN such records per connection and
 * wakeup (then the others run and it comes back next turn), and a
 * connection that sends more than NOISE_MAX of them unasked is ended (the
 * one over is not answered): the answers to our own HelloRequests do not
 * count, anything else does.
 */
#ifndef MOAT_NOISE_H
#define MOAT_NOISE_H

#include "state.h"

#define NOISE_PER_TURN	4	/* non-data records per connection per wakeup */
#define NOISE_MAX	8	/* unasked ones in a connection's life */

enum noise_verdict {
	NOISE_GO_ON,		/* read on */
	NOISE_YIELD,		/* this wakeup's budget is spent: come back */
	NOISE_END,		/* too many: end the connection */
};

/* noise.c */
void	noise_turn_begin(struct conn *c);
int	noise_turn_spent(const struct conn *c);
enum noise_verdict noise_record(struct conn *c, int unasked);

#endif
