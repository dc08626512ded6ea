/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_types.h -- moat-keyd's process state, shared by keyd.c (start-up,
 * the master's channel), keyd_chan.c (the workers' channels) and
 * keyd_out.c (what is said on them).  A header
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

#define KEYD_PENDING_MAX	4096	/* outstanding requests per channel */
#define KEYD_PENDING_RESUME	2048

/* A reply that found the socket full; the main thread sends it later. */
struct keyd_out {
	TAILQ_ENTRY(keyd_out)	entry;
	uint16_t		type;
	uint32_t		id;
	size_t			len;
	uint8_t			data[];
};

/* What a failure counts as. */
enum keyd_fail {
	KEYD_FAIL_ERROR,	/* malformed input, failed operation */
	KEYD_FAIL_REFUSED,	/* the policy said no */
};

/* One worker channel (keyd_chan.c); the signer and keyd_out.c use it too. */
struct keyd_chan {
	uint32_t		magic;
	struct keyd		*kd;
	TAILQ_ENTRY(keyd_chan)	entry;	/* keyd.chans (main thread) */
	struct keyd_signer_queue sq;	/* its jobs (the signer's lock) */
	TAILQ_HEAD(, keyd_out)	outq;
	unsigned		noutq;
	unsigned		pending;	/* queued + running */
	int			refs;
	int			dead;
	int			close_req;	/* out queue overflowed */
	int			want_write;
	int			paused;		/* not reading: too much pending */
	int			resume_req;
	int			hello_done;	/* main thread */
	int			fd;
	uint32_t		worker;
	uint32_t		generation;
	ev_io			rio;
	ev_io			wio;
	struct ipc_keyd_stats	stats;
	struct keyd_limit_bucket bucket;	/* main thread */
	struct keyd_limit_report rl;		/* main thread */
	struct keyd_limit_window logwin;
};

#define KEYD_COUNT(kd, ch, field) do {					\
	(ch)->stats.field++;						\
	(kd)->totals.field++;						\
} while (0)


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
