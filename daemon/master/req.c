/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * req.c -- the master's pending requests (req.h says what they are).
 *
 * Answers are rare (a moatctl command, a reload), so the table is a list
 * and each lookup a walk.  A peer is a child and the pid it had when it
 * was asked: a child restarted in the same slot is another process, which
 * was never asked and cannot answer.  Every peer settles exactly once --
 * answered, timed out, or gone -- and the request is done when the last
 * one has, or at once when nobody could be asked.
 *
 * The ids are the master's for every message it sends on a channel (0 is
 * never used), so a request's answers cannot be mistaken for the answer to
 * anything else.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ipc.h"
#include "req.h"
#include "util.h"

static void	req_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents);

void
req_table_init(struct req_table *t, struct ev_loop *loop)
{
	memset(t, 0, sizeof(*t));
	t->loop = loop;
}

uint32_t
req_next_id(struct req_table *t)
{
	if (++t->next_id == 0)
		t->next_id = 1;
	return t->next_id;
}

void
req_init(struct req_table *t, struct req *r, const struct req_ops *ops)
{
	memset(r, 0, offsetof(struct req, peers));
	r->t = t;
	r->ops = ops;
	r->id = req_next_id(t);
	ev_timer_init(&r->timer, req_timeout_cb, 0., 0.);
}

/* c was sent a message with r->id (by the caller): wait for its answer. */
int
req_expect(struct req *r, struct master_child *c)
{
	struct req_peer *p;

	if (r->npeers == REQ_MAX_PEERS || c->pid <= 0)
		return -EINVAL;
	p = &r->peers[r->npeers++];
	p->child = c;
	p->pid = c->pid;
	p->settled = 0;
	r->pending++;
	return 0;
}

/* Send c a message with r->id and wait for its answer; or -errno. */
int
req_ask(struct req *r, struct master_child *c, uint16_t type,
    const void *payload, size_t len, const int *fds, unsigned nfds)
{
	int e;

	if (c->fd < 0 || c->pid <= 0)
		return -ENOTCONN;
	if (r->npeers == REQ_MAX_PEERS)
		return -ENOSPC;
	if ((e = ipc_send(c->fd, type, r->id, payload, len, fds, nfds)) < 0)
		return e;
	return req_expect(r, c);
}

/* Out of the table, then the owner's: done may free r or reuse it. */
static void
req_finish(struct req *r)
{
	struct req_table *t = r->t;
	struct req **pp;

	ev_timer_stop(t->loop, &r->timer);
	for (pp = &t->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->next = NULL;
	r->ops->done(r);
}

/* One peer settled; 1 when that finished the request (r is gone then). */
static int
req_settled(struct req *r)
{
	if (r->pending > 0)
		r->pending--;
	if (r->pending > 0)
		return 0;
	req_finish(r);
	return 1;
}

/* The table holds r; done comes at once when nobody was asked. */
void
req_start(struct req *r, ev_tstamp timeout)
{
	struct req_table *t = r->t;

	r->next = t->head;
	t->head = r;
	if (r->pending == 0) {
		req_finish(r);
		return;
	}
	ev_timer_set(&r->timer, timeout, 0.);
	ev_timer_start(t->loop, &r->timer);
}

static struct req_peer *
req_peer_find(struct req *r, const struct master_child *c, pid_t pid)
{
	unsigned i;

	for (i = 0; i < r->npeers; i++)
		if (r->peers[i].child == c && r->peers[i].pid == pid &&
		    !r->peers[i].settled)
			return &r->peers[i];
	return NULL;
}

/*
 * A message from child c that answers a request: 1 when a request was
 * waiting for it (its owner has it now), 0 when none is -- an unknown id,
 * a request already done, a second answer, another process in c's slot.
 */
int
req_answer(struct req_table *t, struct master_child *c, struct ipc_msg *msg)
{
	struct req_peer *p;
	struct req *r;

	for (r = t->head; r != NULL; r = r->next)
		if (r->id == msg->hdr.id)
			break;
	if (r == NULL || (p = req_peer_find(r, c, c->pid)) == NULL)
		return 0;
	p->settled = 1;
	r->ops->answered(r, p, msg);
	req_settled(r);
	return 1;
}

/*
 * Process pid of child c exited: nothing it was asked will be answered.
 * A done callback may start new requests or end others, so the walk
 * begins again after each request that finishes.
 */
void
req_child_gone(struct req_table *t, struct master_child *c, pid_t pid)
{
	struct req_peer *p;
	struct req *r;

again:
	for (r = t->head; r != NULL; r = r->next) {
		if ((p = req_peer_find(r, c, pid)) == NULL)
			continue;
		p->settled = 1;
		r->ops->lost(r, p, -ESRCH);
		if (req_settled(r))
			goto again;
	}
}

static void
req_timeout_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct req *r = container_of(timer, struct req, timer);
	unsigned i;

	for (i = 0; i < r->npeers; i++) {
		if (r->peers[i].settled)
			continue;
		r->peers[i].settled = 1;
		r->ops->lost(r, &r->peers[i], -ETIMEDOUT);
	}
	r->pending = 0;
	req_finish(r);
}
