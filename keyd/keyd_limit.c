/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_limit.c -- a token bucket and a log window (keyd_limit.h).  Kept
 * apart from keyd_chan.c because they are plain arithmetic: no channel,
 * no lock, no clock of their own.
 */
#include "config.h"

#include <stdint.h>

#include "keyd_limit.h"

/* A new bucket starts full: a worker may burst at once. */
void
keyd_limit_bucket_init(struct keyd_limit_bucket *b, double burst,
    uint64_t now_us)
{
	b->tokens = burst;
	b->last_us = now_us;
}

/*
 * Take one token: rate per second, up to burst at once; rate 0 is no
 * limit.  Returns 1 if the request may go on, 0 if it is over the limit.
 */
int
keyd_limit_bucket_take(struct keyd_limit_bucket *b, double rate, double burst,
    uint64_t now_us)
{
	if (rate <= 0)
		return 1;
	b->tokens += (double)(now_us - b->last_us) * rate / 1e6;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_us = now_us;
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

/*
 * May one more line be logged?  At most max per window of len_us.  When a
 * new window opens, *dropped is how many the last one left out (else 0).
 */
int
keyd_limit_window_take(struct keyd_limit_window *w, uint64_t len_us,
    unsigned max, uint64_t now_us, uint64_t *dropped)
{
	*dropped = 0;
	if (now_us - w->start_us >= len_us) {
		*dropped = w->suppressed;
		w->start_us = now_us;
		w->count = 0;
		w->suppressed = 0;
	}
	if (w->count < max) {
		w->count++;
		return 1;
	}
	w->suppressed++;
	return 0;
}
