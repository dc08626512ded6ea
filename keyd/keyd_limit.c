/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_limit.c -- token buckets, the automatic limits and a log window
 * (keyd_limit.h).  Kept apart from keyd_chan.c because they are plain
 * arithmetic: no channel, no lock, no clock of their own.
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

/*
 * The limit of a key that loaded, one private-key operation taking
 * op_seconds (keystore.c timed it): threads / op_seconds per second (what
 * the signers can do with it, all busy), or key_rate_opt if given; op 0
 * (the slot is empty) clears it.  Its bucket starts full.
 */
void
keyd_limit_key_set(struct keyd_key_limit *kl, double op_seconds,
    unsigned threads, double key_rate_opt)
{
	kl->capacity = op_seconds > 0 ? (double)threads / op_seconds : 0;
	kl->rate = kl->capacity <= 0 ? 0 : key_rate_opt > 0 ? key_rate_opt :
	    kl->capacity;
	kl->burst = kl->rate * KEYD_LIMIT_BURST_S < 1.0 ? 1.0 :
	    kl->rate * KEYD_LIMIT_BURST_S;
	/* Full, and as of time 0: its first take finds it full still. */
	keyd_limit_bucket_init(&kl->bucket, kl->burst, 0);
}

/*
 * A channel's limit: rate_opt if given, else what keyd can sign with the
 * fastest of its n key slots (no channel can use more), at least
 * KEYD_LIMIT_RATE_MIN; burst_opt if given, else KEYD_LIMIT_BURST_S of it.
 */
void
keyd_limit_chan_rate(const struct keyd_key_limit *kl, unsigned n,
    double rate_opt, double burst_opt, double *rate, double *burst)
{
	unsigned i;

	*rate = KEYD_LIMIT_RATE_MIN;
	for (i = 0; i < n; i++)
		if (kl[i].capacity > *rate)
			*rate = kl[i].capacity;
	if (rate_opt > 0)
		*rate = rate_opt;
	*burst = burst_opt > 0 ? burst_opt : *rate * KEYD_LIMIT_BURST_S;
	if (*burst < 1.0)
		*burst = 1.0;
}

/*
 * Rate-limit reports: one line at most every period_us per channel, with
 * how many requests were refused since the line before.  Call it with
 * refused 1 for each refusal and 0 from a periodic timer; it returns 1
 * when a line is due now, with *count for it, and 0 otherwise.  The first
 * refusal of a channel is reported at once.
 */
int
keyd_limit_report_take(struct keyd_limit_report *r, uint64_t period_us,
    int refused, uint64_t now_us, uint64_t *count)
{
	r->pending += refused ? 1 : 0;
	*count = 0;
	if (r->pending == 0 ||
	    (r->started && now_us - r->last_us < period_us))
		return 0;
	*count = r->pending;
	r->pending = 0;
	r->last_us = now_us;
	r->started = 1;
	return 1;
}
