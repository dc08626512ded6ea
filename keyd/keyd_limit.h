/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_limit.h -- the limits keyd applies: token buckets (one per worker
 * channel, --rate-limit and --rate-burst, and one per key, --key-rate),
 * the rule that derives them from what the machine can sign (keyd.c's
 * header says it), and a window that caps log lines.  Pure arithmetic on
 * a clock the caller reads; the caller holds whatever lock guards the
 * state (keyd_chan.c).
 */
#ifndef MOAT_KEYD_LIMIT_H
#define MOAT_KEYD_LIMIT_H

#include <stdint.h>

struct keyd_limit_bucket {
	double		tokens;
	uint64_t	last_us;
};

/* The limit of one key slot, across all channels. */
struct keyd_key_limit {
	struct keyd_limit_bucket bucket;
	double			rate;		/* per second; 0 = no key */
	double			burst;
	double			capacity;	/* measured, all threads */
};

/* What a channel refused for its rate and has not reported yet. */
struct keyd_limit_report {
	uint64_t	pending;	/* refused since the last line */
	uint64_t	last_us;	/* when the last line was logged */
	int		started;	/* a line was logged at all */
};

struct keyd_limit_window {
	uint64_t	start_us;
	unsigned	count;		/* lines shown in this window */
	uint64_t	suppressed;	/* lines left out in this window */
};

/*
 * A bucket holds this many seconds of its rate: the worker's default
 * keyd-timeout, beyond which a queued request would time out in the
 * worker before a signer got to it.
 */
#define KEYD_LIMIT_BURST_S	2.0
#define KEYD_LIMIT_RATE_MIN	100.0	/* per second: a channel's floor */
#define KEYD_LIMIT_REPORT_US	(60ull * 1000000ull)	/* one line a minute */

/* keyd_limit.c */
void	keyd_limit_bucket_init(struct keyd_limit_bucket *b, double burst,
	    uint64_t now_us);
int	keyd_limit_bucket_take(struct keyd_limit_bucket *b, double rate,
	    double burst, uint64_t now_us);
int	keyd_limit_window_take(struct keyd_limit_window *w, uint64_t len_us,
	    unsigned max, uint64_t now_us, uint64_t *dropped);
void	keyd_limit_key_set(struct keyd_key_limit *kl, double op_seconds,
	    unsigned threads, double key_rate_opt);
void	keyd_limit_chan_rate(const struct keyd_key_limit *kl, unsigned n,
	    double rate_opt, double burst_opt, double *rate, double *burst);
int	keyd_limit_report_take(struct keyd_limit_report *r, uint64_t period_us,
	    int refused, uint64_t now_us, uint64_t *count);

#endif
