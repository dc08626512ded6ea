/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_watchdog.c -- WatchdogSec=: WATCHDOG=1 only while the master and
 * its children answer.
 *
 * A ping that only says the master's loop turns would keep a service alive
 * whose workers are stuck.  So every half watchdog interval the master
 * asks keyd and each running worker for its counters (the requests
 * `moatctl stats` sends, answered from their loops), and pings systemd once
 * every one has answered.  A child that does not answer within 4/10 of the
 * interval costs that ping; two in a row and systemd's watchdog fires, as
 * it should for a hung process.  A child that is down (crashed, waiting
 * for its restart) is not hung: the master restarts it, and pings.  A
 * master whose loop stalls sends nothing at all.
 *
 * sd_watchdog_enabled() reads WATCHDOG_USEC (and WATCHDOG_PID) as systemd
 * sets them; without them, or at shutdown, nothing runs.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "ipc.h"
#include "log.h"
#include "master_types.h"
#include "master_watchdog.h"
#include "req.h"
#include "util.h"

struct master_watchdog {
	struct master	*m;
	ev_timer	tick;
	struct req	probe;
	int		probing;
	int		stopped;	/* free it when the probe is done */
	unsigned	unanswered;	/* of the probe in flight */
	double		interval;	/* WatchdogSec=, in seconds */
	char		who[64];	/* the first that did not answer */
};

static void
master_watchdog_answered(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	(void)rq;
	(void)p;
	(void)msg;
}

static void
master_watchdog_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct master_watchdog *wd = container_of(rq, struct master_watchdog,
	    probe);

	if (error != -ETIMEDOUT)
		return;		/* it exited: not hung, and restarted */
	if (wd->unanswered++ == 0)
		snprintf(wd->who, sizeof(wd->who), "%s (pid %ld)",
		    p->child->name, (long)p->pid);
}

static void
master_watchdog_done(struct req *rq)
{
	struct master_watchdog *wd = container_of(rq, struct master_watchdog,
	    probe);

	wd->probing = 0;
	if (wd->stopped) {
		free(wd);
		return;
	}
	if (wd->unanswered == 0) {
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	log_warnx("watchdog: %s and %u more did not answer within %.0f ms: "
	    "no WATCHDOG=1 this time", wd->who, wd->unanswered - 1,
	    wd->interval * 400.);
}

static const struct req_ops master_watchdog_ops = {
	master_watchdog_answered,
	master_watchdog_lost,
	master_watchdog_done,
};

static void
master_watchdog_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_watchdog *wd = container_of(t, struct master_watchdog,
	    tick);
	struct master *m = wd->m;
	unsigned i;

	if (wd->probing)
		return;		/* its deadline comes first */
	req_init(&m->reqs, &wd->probe, &master_watchdog_ops);
	wd->unanswered = 0;
	wd->probing = 1;
	if (m->keyd.ready)
		(void)req_ask(&wd->probe, &m->keyd, IPC_KEYD_STATS, NULL, 0,
		    NULL, 0);
	for (i = 0; i < m->cfg->workers; i++)
		if (m->workers[i].pid > 0)
			(void)req_ask(&wd->probe, &m->workers[i],
			    IPC_WORKER_STATS, NULL, 0, NULL, 0);
	req_start(&wd->probe, wd->interval * 0.4);	/* may end at once */
}

void
master_watchdog_start(struct master *m)
{
	struct master_watchdog *wd;
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	if ((wd = calloc(1, sizeof(*wd))) == NULL) {
		log_warnx("watchdog: out of memory; WatchdogSec= unserved");
		return;
	}
	wd->m = m;
	wd->interval = (double)usec / 1e6;
	m->watchdog = wd;
	ev_timer_init(&wd->tick, master_watchdog_tick_cb, 0., wd->interval / 2.);
	ev_timer_start(m->loop, &wd->tick);
	log_info("watchdog: %.3f s; WATCHDOG=1 every %.3f s while keyd and "
	    "the workers answer", wd->interval, wd->interval / 2.);
}

/* Shutdown: no more pings (systemd's stop timeout takes over). */
void
master_watchdog_stop(struct master *m)
{
	struct master_watchdog *wd = m->watchdog;

	if (wd == NULL)
		return;
	ev_timer_stop(m->loop, &wd->tick);
	m->watchdog = NULL;
	wd->stopped = 1;
	if (!wd->probing)
		free(wd);	/* else master_watchdog_done() does */
}
