/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.h -- the counters of every worker and keyd, gathered by one
 * asynchronous request (stats.c), and `moatctl stats` in text and JSON.
 */
#ifndef MOAT_MASTER_STATS_H
#define MOAT_MASTER_STATS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "answer.h"
#include "ipc.h"
#include "master_types.h"

/* What one worker answered, or why it did not. */
struct stats_worker {
	pid_t			pid;		/* 0: not asked (not running) */
	int			answered;	/* or will not: see status */
	int			status;		/* < 0: IPC_ERROR or gone */
	char			error[IPC_ERRMSG_MAX];
	struct ipc_worker_stats	stats;
};

/* One gathering, complete: every child answered or will not. */
struct stats {
	const struct config	*cfg;		/* the frontends' names */
	unsigned		nworkers;
	struct stats_worker	w[MASTER_MAX_WORKERS];
	int			keyd_answered;
	int			keyd_status;	/* 0: keyd holds the answer */
	char			keyd_error[IPC_ERRMSG_MAX];
	struct ipc_keyd_stats	keyd;
};

struct stats_req;

/*
 * done(s, arg) is called once, when every worker and keyd answered or
 * MASTER_REQ_TIMEOUT_S passed; s is valid only during the call.
 */
typedef void	stats_done_fn(const struct stats *s, void *arg);

/* stats.c */
struct stats_req *stats_gather_new(struct master *m, stats_done_fn *done,
	    void *arg);
void	stats_gather_start(struct stats_req *r);
void	stats_gather_forget(struct stats_req *r);
uint64_t stats_field(const void *s, size_t off);
unsigned stats_sum(const struct stats *s, struct ipc_worker_stats *tot);
void	stats_answer(struct answer *a, const struct stats *s, int json);

#endif
