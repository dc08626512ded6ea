/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * req.h -- requests from the master to its children, and their answers.
 *
 * A request is one message id sent to some children (workers, keyd),
 * each of which answers with that id, or does not: a deadline ends the
 * wait, and a child that exits first will not answer either.  req.c
 * matches each answer to its request and child, ignores what comes late or
 * twice, and tells the request's owner through its req_ops -- the answer,
 * each child that will not answer and why, and "done" once -- so that the
 * owners (control_cmd.c: stats, rekey; reload.c) are called back, never
 * called by name.
 *
 * The owner embeds struct req in its own struct (container_of), fills it
 * with req_init() and req_ask() / req_expect(), and hands it over with
 * req_start(); from then on the table holds it until ops->done(), after
 * which it is the owner's again, to free or to use for another request.
 */
#ifndef MOAT_REQ_H
#define MOAT_REQ_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ipc.h"
#include "master_types.h"

#define REQ_MAX_PEERS	(MASTER_MAX_WORKERS + 1)	/* every worker, keyd */

/* One child asked: that process, not whichever runs in its slot later. */
struct req_peer {
	struct master_child	*child;
	pid_t			pid;
	int			settled;	/* answered, or will not */
};

struct req_ops {
	/* p answered with msg (the request's id; its type is unchecked) */
	void	(*answered)(struct req *r, const struct req_peer *p,
		    struct ipc_msg *msg);
	/* p will not answer: -ETIMEDOUT, or -ESRCH when it exited */
	void	(*lost)(struct req *r, const struct req_peer *p, int error);
	/* every child settled; r is out of the table */
	void	(*done)(struct req *r);
};

struct req {
	struct req_table	*t;
	struct req		*next;
	const struct req_ops	*ops;
	uint32_t		id;
	ev_timer		timer;
	unsigned		npeers;
	unsigned		pending;	/* peers not settled */
	struct req_peer		peers[REQ_MAX_PEERS];
};

/* req.c */
void	req_table_init(struct req_table *t, struct ev_loop *loop);
uint32_t req_next_id(struct req_table *t);
void	req_init(struct req_table *t, struct req *r, const struct req_ops *ops);
int	req_ask(struct req *r, struct master_child *c, uint16_t type,
	    const void *payload, size_t len, const int *fds, unsigned nfds);
int	req_expect(struct req *r, struct master_child *c);
void	req_start(struct req *r, ev_tstamp timeout);
int	req_answer(struct req_table *t, struct master_child *c,
	    struct ipc_msg *msg);
void	req_child_gone(struct req_table *t, struct master_child *c, pid_t pid);

#endif
