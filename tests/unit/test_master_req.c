/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_master_req.c -- the master's pending-request table
 * (daemon/master/req.c), driven for real: a libev loop of its own, each
 * child faked as a socketpair whose far end the test reads and answers
 * from, and the master's ends read by ev_io watchers that hand every
 * message to req_answer(), as child.c does.
 *
 * What the owner of a request is told is recorded per child (answers,
 * losses and why, "done") and checked against what the children did.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ipc.h"
#include "req.h"
#include "util.h"

#define NKIDS		3
#define TIMEOUT_S	0.05	/* a request's deadline here */
#define GUARD_S		2.0	/* a test that waits longer has failed */

struct kid {
	struct master_child	c;	/* the master's view: c.fd, c.pid */
	int			fd;	/* the child's end */
	ev_io			io;	/* the master's end, read */
};

/* What one request's owner was told. */
struct owner {
	struct req	req;
	int		answers[NKIDS];
	int		code[NKIDS];	/* what the answer said */
	int		lost[NKIDS];	/* 0, -ETIMEDOUT or -ESRCH */
	int		done;
};

struct fixture {
	struct ev_loop		*loop;
	struct req_table	t;
	struct kid		kids[NKIDS];
	ev_timer		guard;
	int			guard_fired;
	int			taken, ignored;	/* req_answer()'s verdicts */
	struct ipc_msg		msg;
};

static void
owner_answer(struct req *r, const struct req_peer *p, struct ipc_msg *msg)
{
	struct owner *o = container_of(r, struct owner, req);
	struct ipc_error ie;

	assert_int_equal(msg->hdr.id, r->id);
	assert_int_equal(msg->hdr.type, IPC_ERROR);
	assert_int_equal(ipc_error_decode(msg->payload, msg->hdr.len, &ie), 0);
	assert_int_equal(p->pid, p->child->pid);
	o->answers[p->child->index]++;
	o->code[p->child->index] = ie.code;
}

static void
owner_lost(struct req *r, const struct req_peer *p, int error)
{
	struct owner *o = container_of(r, struct owner, req);

	assert_int_equal(o->lost[p->child->index], 0);
	o->lost[p->child->index] = error;
}

static void
owner_done(struct req *r)
{
	struct owner *o = container_of(r, struct owner, req);

	o->done++;
	ev_break(r->t->loop, EVBREAK_ONE);
}

static const struct req_ops owner_ops = {
	owner_answer, owner_lost, owner_done,
};

/* The master's end of kid's channel: every answer goes to req.c. */
static void
kid_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct fixture *f = ev_userdata(loop);
	struct kid *k = container_of(io, struct kid, io);
	const struct ipc_ends ends = { IPC_ROLE_MASTER, IPC_ROLE_WORKER };

	while (ipc_recv(k->c.fd, &ends, &f->msg) > 0) {
		if (req_answer(&f->t, &k->c, &f->msg))
			f->taken++;
		else
			f->ignored++;
		ipc_msg_close_fds(&f->msg);
	}
}

static void
guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct fixture *f = ev_userdata(loop);

	f->guard_fired = 1;
	ev_break(loop, EVBREAK_ALL);
}

static int
setup(void **state)
{
	struct fixture *f;
	int sv[2];
	unsigned i;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if ((f->loop = ev_loop_new(EVFLAG_NOENV)) == NULL)
		return -1;
	ev_set_userdata(f->loop, f);
	req_table_init(&f->t, f->loop);
	for (i = 0; i < NKIDS; i++) {
		if (ipc_socketpair(sv) < 0 ||
		    fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
		    fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
			return -1;
		f->kids[i].c.index = i;
		f->kids[i].c.pid = 1000 + (pid_t)i;
		f->kids[i].c.fd = sv[0];
		f->kids[i].c.role = IPC_ROLE_WORKER;
		snprintf(f->kids[i].c.name, sizeof(f->kids[i].c.name),
		    "worker %u", i);
		f->kids[i].fd = sv[1];
		ev_io_init(&f->kids[i].io, kid_read_cb, sv[0], EV_READ);
		ev_io_start(f->loop, &f->kids[i].io);
	}
	ev_timer_init(&f->guard, guard_cb, GUARD_S, 0.);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	unsigned i;

	for (i = 0; i < NKIDS; i++) {
		ev_io_stop(f->loop, &f->kids[i].io);
		close(f->kids[i].c.fd);
		close(f->kids[i].fd);
	}
	ev_loop_destroy(f->loop);
	free(f);
	return 0;
}

/* Run the loop until a request is done (or the guard says it never is). */
static void
run_until_done(struct fixture *f)
{
	ev_timer_start(f->loop, &f->guard);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
	assert_false(f->guard_fired);
}

/* Let the loop read whatever the kids sent, without waiting for more. */
static void
pump(struct fixture *f)
{
	unsigned i;

	for (i = 0; i < 4; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
}

/* What kid i was asked: the id of the message waiting on its end. */
static uint32_t
kid_asked(struct fixture *f, unsigned i)
{
	const struct ipc_ends ends = { IPC_ROLE_WORKER, IPC_ROLE_MASTER };

	assert_int_equal(ipc_recv(f->kids[i].fd, &ends, &f->msg), 1);
	assert_int_equal(f->msg.hdr.type, IPC_WORKER_STATS);
	return f->msg.hdr.id;
}

/* Kid i answers request id; its code tells the answers apart. */
static void
kid_answers(struct fixture *f, unsigned i, uint32_t id)
{
	assert_int_equal(ipc_error_send(f->kids[i].fd, id, -(100 + (int)i),
	    "kid %u", i), 0);
}

/* A request to kids 0 .. n - 1, started; free it when the test ends. */
static struct owner *
ask_kids(struct fixture *f, unsigned n)
{
	struct owner *o;
	unsigned i;

	o = calloc(1, sizeof(*o));
	assert_non_null(o);
	req_init(&f->t, &o->req, &owner_ops);
	for (i = 0; i < n; i++)
		assert_int_equal(req_ask(&o->req, &f->kids[i].c,
		    IPC_WORKER_STATS, NULL, 0, NULL, 0), 0);
	req_start(&o->req, TIMEOUT_S);
	return o;
}

/* Each answer reaches the request with its id, once; strays do not. */
static void
test_answers_matched_by_id(void **state)
{
	struct fixture *f = *state;
	struct owner *a = ask_kids(f, 2), *b = ask_kids(f, 2);
	uint32_t ida, idb;

	assert_int_not_equal(a->req.id, b->req.id);
	ida = kid_asked(f, 0);
	idb = kid_asked(f, 0);
	assert_int_equal(ida, a->req.id);
	assert_int_equal(idb, b->req.id);
	assert_int_equal(kid_asked(f, 1), ida);
	assert_int_equal(kid_asked(f, 1), idb);

	/* an id nobody asked with, and kid 2, which was not asked */
	kid_answers(f, 0, ida + idb + 7);
	kid_answers(f, 2, ida);
	pump(f);
	assert_int_equal(f->taken, 0);
	assert_int_equal(f->ignored, 2);
	/* b's answers first, kid 0 twice while b still waits for kid 1 */
	kid_answers(f, 0, idb);
	kid_answers(f, 0, idb);
	pump(f);
	assert_int_equal(f->taken, 1);
	assert_int_equal(f->ignored, 3);
	assert_int_equal(b->answers[0], 1);
	assert_int_equal(b->done, 0);
	kid_answers(f, 1, idb);
	run_until_done(f);
	assert_int_equal(b->done, 1);
	assert_int_equal(a->done, 0);
	assert_int_equal(b->answers[0], 1);
	assert_int_equal(b->answers[1], 1);
	assert_int_equal(b->code[0], -100);
	assert_int_equal(b->code[1], -101);
	assert_int_equal(a->answers[0] + a->answers[1] + a->answers[2], 0);
	assert_int_equal(f->taken, 2);
	assert_int_equal(f->ignored, 3);

	kid_answers(f, 0, ida);
	kid_answers(f, 1, ida);
	run_until_done(f);
	assert_int_equal(a->done, 1);
	assert_int_equal(a->answers[0], 1);
	assert_int_equal(a->answers[1], 1);
	assert_int_equal(a->code[1], -101);
	assert_int_equal(a->lost[0] + a->lost[1], 0);
	assert_int_equal(b->lost[0] + b->lost[1], 0);
	assert_int_equal(f->taken, 4);
	free(a);
	free(b);
}

/* An answer after the request is done is nobody's. */
static void
test_late_answer_ignored(void **state)
{
	struct fixture *f = *state;
	struct owner *o = ask_kids(f, 2);
	uint32_t id;

	id = kid_asked(f, 0);
	kid_answers(f, 0, id);
	run_until_done(f);		/* kid 1 times out */
	assert_int_equal(o->done, 1);
	assert_int_equal(o->lost[1], -ETIMEDOUT);
	kid_answers(f, 1, id);		/* too late */
	kid_answers(f, 0, id);		/* and again */
	pump(f);
	assert_int_equal(f->taken, 1);
	assert_int_equal(f->ignored, 2);
	assert_int_equal(o->answers[0], 1);
	assert_int_equal(o->answers[1], 0);
	assert_int_equal(o->done, 1);
	free(o);
}

/* The deadline settles every child that did not answer, and only those. */
static void
test_timeout_per_child(void **state)
{
	struct fixture *f = *state;
	struct owner *o = ask_kids(f, NKIDS);
	ev_tstamp t0;

	kid_answers(f, 1, kid_asked(f, 1));
	t0 = ev_time();
	run_until_done(f);
	assert_true(ev_time() - t0 >= TIMEOUT_S * 0.9);
	assert_int_equal(o->done, 1);
	assert_int_equal(o->answers[1], 1);
	assert_int_equal(o->lost[0], -ETIMEDOUT);
	assert_int_equal(o->lost[1], 0);
	assert_int_equal(o->lost[2], -ETIMEDOUT);
	assert_int_equal(o->answers[0] + o->answers[2], 0);
	free(o);
}

/*
 * A child that exits is settled at once; the process that replaces it in
 * its slot was never asked, and a pid that is not the one asked is no news.
 */
static void
test_child_gone(void **state)
{
	struct fixture *f = *state;
	struct owner *o = ask_kids(f, 2);
	uint32_t id;

	id = kid_asked(f, 0);
	req_child_gone(&f->t, &f->kids[1].c, f->kids[1].c.pid + 50);
	assert_int_equal(o->lost[1], 0);
	req_child_gone(&f->t, &f->kids[0].c, f->kids[0].c.pid);
	assert_int_equal(o->lost[0], -ESRCH);
	assert_int_equal(o->done, 0);
	req_child_gone(&f->t, &f->kids[0].c, f->kids[0].c.pid);
	/* slot 0 restarted: the new process answers the old id */
	f->kids[0].c.pid += 10;
	kid_answers(f, 0, id);
	pump(f);
	assert_int_equal(f->ignored, 1);
	assert_int_equal(o->answers[0], 0);
	assert_int_equal(o->done, 0);
	kid_answers(f, 1, id);
	run_until_done(f);
	assert_int_equal(o->done, 1);
	assert_int_equal(o->answers[1], 1);
	assert_int_equal(o->lost[0], -ESRCH);
	assert_int_equal(o->lost[1], 0);
	free(o);
}

/* Nobody to ask (none running, none reachable): done before start returns. */
static void
test_nobody_to_ask(void **state)
{
	struct fixture *f = *state;
	struct owner *o = calloc(1, sizeof(*o));
	struct master_child gone;
	uint32_t id;

	assert_non_null(o);
	memset(&gone, 0, sizeof(gone));
	gone.fd = -1;
	req_init(&f->t, &o->req, &owner_ops);
	assert_int_equal(req_ask(&o->req, &gone, IPC_WORKER_STATS, NULL, 0,
	    NULL, 0), -ENOTCONN);
	id = o->req.id;
	req_start(&o->req, TIMEOUT_S);
	assert_int_equal(o->done, 1);
	assert_null(f->t.head);
	kid_answers(f, 0, id);
	pump(f);
	assert_int_equal(f->ignored, 1);
	assert_int_equal(o->done, 1);
	free(o);
}

/* Ids are never 0, also when the counter wraps. */
static void
test_ids(void **state)
{
	struct fixture *f = *state;

	f->t.next_id = UINT32_MAX - 1;
	assert_int_equal(req_next_id(&f->t), UINT32_MAX);
	assert_int_equal(req_next_id(&f->t), 1);
	assert_int_equal(req_next_id(&f->t), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers_matched_by_id,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_answer_ignored,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_per_child,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nobody_to_ask, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
