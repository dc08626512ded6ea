/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_limit.h -- the two limits each worker channel applies: a token
 * bucket for its key operations (--rate-limit, --rate-burst) and a window
 * that caps its log lines.  Pure arithmetic on a clock the caller reads;
 * the caller holds whatever lock guards the state (keyd_chan.c).
 */
#ifndef MOAT_KEYD_LIMIT_H
#define MOAT_KEYD_LIMIT_H

#include <stdint.h>

struct keyd_limit_bucket {
	double		tokens;
	uint64_t	last_us;
};

struct keyd_limit_window {
	uint64_t	start_us;
	unsigned	count;		/* lines shown in this window */
	uint64_t	suppressed;	/* lines left out in this window */
};

/* keyd_limit.c */
void	keyd_limit_bucket_init(struct keyd_limit_bucket *b, double burst,
	    uint64_t now_us);
int	keyd_limit_bucket_take(struct keyd_limit_bucket *b, double rate,
	    double burst, uint64_t now_us);
int	keyd_limit_window_take(struct keyd_limit_window *w, uint64_t len_us,
	    unsigned max, uint64_t now_us, uint64_t *dropped);

#endif
