/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_types.h -- moat-keyd's process state, shared by keyd.c (start-up,
 * the master's channel) and keyd_chan.c (the workers' channels).  A header
 * of its own, with no .c file behind it, so that neither of the two has
 * to include the other.
 *
 * Locking: keyd.lock guards every channel's out queue, flags, reference
 * count and counters, the channel count and the totals.  The signer's own
 * lock guards the job queues (keyd_signer.c); the two are never held
 * together.  The channel list, the key store and every libev watcher
 * belong to the main thread.
 */
#ifndef MOAT_KEYD_TYPES_H
#define MOAT_KEYD_TYPES_H

#include <sys/queue.h>

#include <pthread.h>

#include <ev.h>

#include "ipc.h"
#include "keyd_limit.h"
#include "keyd_signer.h"
#include "keystore.h"

struct keyd_chan;

struct keyd {
	struct ev_loop		*loop;
	ev_io			ctl_io;
	ev_async		wake;	/* signers -> main (keyd_chan.c) */
	int			ctl_fd;
	int			master_hello;
	pthread_mutex_t		lock;
	TAILQ_HEAD(, keyd_chan)	chans;
	unsigned		nchans;
	struct ipc_keyd_stats	totals;
	struct keyd_signer	signer;
	/* The limits (keyd.c's header says the rule); main thread only. */
	double			rate_opt;	/* --rate-limit; 0 = auto */
	double			burst_opt;	/* --rate-burst; 0 = auto */
	double			key_rate_opt;	/* --key-rate; 0 = auto */
	double			rate;		/* per channel, in force */
	double			burst;
	struct keyd_key_limit	keylim[IPC_MAX_KEYS];
	ev_timer		rl_timer;	/* rate-limit reports */
	int			seccomp_trap;
	struct keystore		ks;
	struct ipc_msg		msg;	/* main thread's receive buffer */
};

#endif
