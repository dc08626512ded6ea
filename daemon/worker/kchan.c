/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kchan.c -- the worker's channel to keyd.
 *
 * Requests in flight
 * ------------------
 * A key operation comes from a handshake coroutine (xkey.c): kchan_call()
 * sends the request, links it (it lives on the coroutine's stack) into the
 * in-flight list and the id hash, and yields to the loop.  The loop resumes
 * the coroutine when keyd's answer arrives, when the request's deadline
 * (keyd-timeout) passes, when the channel is lost or replaced, or when the
 * connection closes under it (kchan_req_abort()); kchan_call() then returns
 * the result.  Many requests are in flight at once and answers may come in
 * any order.  Every request has the same timeout, so the in-flight list in
 * send order is also the deadline order and one timer serves them all.
 *
 * The channel
 * -----------
 * At start-up (before the privilege drop, no loop yet) kchan_start() runs
 * the exchange blocking with a deadline: IPC_HELLO both ways, IPC_KEY_LIST,
 * the reply.  Later the master may hand a new channel (kchan_replace(),
 * after keyd restarted): the same exchange runs on it inside the loop, and
 * the worker hears when it is ready or failed (hooks.ready).
 *
 * keyd dying does not end the handshakes that wait for it (a TLS 1.2
 * renegotiation among them: its connection would be lost).  When the
 * channel is lost (EOF, a reset, a failed send, or the master replacing
 * it), the requests in flight stay in the list, unsent and without an id,
 * and new ones join them; once the next channel is ready they get ids on
 * it and are sent in order.  Each keeps its deadline (keyd-timeout from
 * its first send), so a keyd that does not come back in time fails them
 * as a slow one would.  A request that was in flight when a second
 * channel died fails ("keyd channel lost"): a request that kills keyd must
 * not kill every keyd after it.  A protocol violation or a new channel
 * that fails its set-up fails every request: the worker never dies because
 * keyd died.
 *
 * keyd speaking nonsense (STYLE.md point 9): an answer of the wrong type, a
 * malformed payload, a truncated datagram, a type keyd may not send (the
 * permit check of ipc_recv()), or an id this channel never issued is a
 * protocol violation.  The channel is dropped and the worker is told
 * (hooks.violation): it stops accepting and exits 1 once its established
 * connections have finished, so the master starts a fresh worker.  An
 * answer for an id that was issued but is no longer waiting (it timed out
 * or its connection went away) is normal and ignored.  Key bytes are never
 * logged, nor signatures.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "ipc.h"
#include "log.h"
#include "util.h"
#include "coro.h"
#include "kchan.h"

#define KCHAN_REQ_MAGIC		0x4b526571u	/* "KReq" */
#define KCHAN_RECV_BATCH	64	/* answers handled per wakeup */
#define KCHAN_SETUP_MIN_MS	1000u

/* One key operation in flight; lives on the waiting coroutine's stack. */
struct kchan_req {
	unsigned		magic;
	uint32_t		id;
	uint16_t		type;		/* IPC_SIGN or IPC_DECRYPT */
	int			sent;
	ev_tstamp		t_sent;
	ev_tstamp		deadline;
	struct kchan_req	*prev, *next;	/* channel's in-flight list */
	struct kchan_req	*hnext;		/* id hash chain */
	struct kchan		*ch;
	struct coro		*co;
	const char		*peer;		/* the client, for logs */
	const uint8_t		*payload;	/* encoded, for a delayed send */
	size_t			len;
	int			carried;	/* survived a lost channel */
	/* result */
	int			status;		/* 0 or negative */
	char			errmsg[IPC_ERRMSG_MAX];
	uint8_t			*out;		/* gnutls_malloc'd answer */
	size_t			outlen;
};

static struct ipc_msg	kchan_msg;	/* receive buffer; one loop, one user */
static const struct ipc_ends kchan_ends = { IPC_ROLE_WORKER, IPC_ROLE_KEYD };

static void	worker_dispatch_keyd(struct ev_loop *loop, ev_io *io,
		    int revents);
static void	kchan_req_timer_cb(struct ev_loop *loop, ev_timer *t,
		    int revents);
static void	kchan_setup_timer_cb(struct ev_loop *loop, ev_timer *t,
		    int revents);
static void	kchan_down(struct kchan *ch, int err, const char *why,
		    int carry);

/* ---- in-flight bookkeeping ---------------------------------------------- */

static unsigned
kchan_bucket(uint32_t id)
{
	return (id * 2654435761u) >> 24;	/* 256 buckets */
}

static struct kchan_req *
kchan_req_find(struct kchan *ch, uint32_t id)
{
	struct kchan_req *r;

	for (r = ch->bucket[kchan_bucket(id)]; r != NULL; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

static uint32_t
kchan_id_next(struct kchan *ch)
{
	uint32_t id;

	/* 0 is the hello's id; after a wrap skip ids still in flight. */
	do {
		id = ch->next_id++;
		if (ch->next_id == 0) {
			ch->next_id = 1;
			ch->wrapped = 1;
		}
	} while (id == 0 || kchan_req_find(ch, id) != NULL);
	return id;
}

/* An id on the current channel, findable by keyd's answer. */
static void
kchan_req_hash(struct kchan *ch, struct kchan_req *r)
{
	unsigned b;

	r->id = kchan_id_next(ch);
	b = kchan_bucket(r->id);
	r->hnext = ch->bucket[b];
	ch->bucket[b] = r;
}

static void
kchan_req_unhash(struct kchan *ch, struct kchan_req *r)
{
	struct kchan_req **pp;

	if (r->id == 0)
		return;
	for (pp = &ch->bucket[kchan_bucket(r->id)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	}
	r->hnext = NULL;
	r->id = 0;
}

/* Into the in-flight list (send order = deadline order). */
static void
kchan_req_link(struct kchan *ch, struct kchan_req *r)
{
	r->prev = ch->tail;
	r->next = NULL;
	if (ch->tail != NULL)
		ch->tail->next = r;
	else
		ch->head = r;
	ch->tail = r;
	ch->npending++;
}

static void
kchan_req_unlink(struct kchan *ch, struct kchan_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		ch->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		ch->tail = r->prev;
	kchan_req_unhash(ch, r);
	if (!r->sent)
		ch->nunsent--;
	r->prev = r->next = r->hnext = NULL;
	ch->npending--;
}

static void
kchan_timer_update(struct kchan *ch)
{
	ev_tstamp after;

	if (ch->loop == NULL)
		return;
	ev_timer_stop(ch->loop, &ch->req_timer);
	if (ch->head == NULL)
		return;
	after = ch->head->deadline - ev_now(ch->loop);
	ev_timer_set(&ch->req_timer, after > 0.001 ? after : 0.001, 0.);
	ev_timer_start(ch->loop, &ch->req_timer);
}

static void
kchan_io_update(struct kchan *ch)
{
	int events = EV_READ | (ch->nunsent > 0 ? EV_WRITE : 0);

	if (ch->loop == NULL || ch->fd < 0)
		return;
	if (ev_is_active(&ch->io) &&
	    (ch->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(ch->loop, &ch->io);
	ev_io_set(&ch->io, ch->fd, events);
	ev_io_start(ch->loop, &ch->io);
}

/*
 * Complete one request and resume its handshake.  Runs on the loop's stack;
 * the request lives on the coroutine's stack, so it is not touched after
 * the resume.
 */
static void
kchan_req_finish(struct kchan *ch, struct kchan_req *r, int status,
    const uint8_t *data, size_t len, const char *errmsg)
{
	struct ipc_worker_stats *st = ch->stats;
	uint64_t us;

	/*
	 * Given up (the client left, or keyd-timeout): tell keyd, which drops
	 * the request if no signer has taken it yet, instead of signing for
	 * nobody while live handshakes queue behind it.  Best effort: a full
	 * socket only means keyd signs it after all, and the answer is
	 * ignored as any late one is.
	 */
	if ((status == -ECANCELED || status == -ETIMEDOUT) && r->sent &&
	    ch->fd >= 0 && !ch->broken)
		(void)ipc_send(ch->fd, IPC_CANCEL, r->id, NULL, 0, NULL, 0);
	kchan_req_unlink(ch, r);
	if (status == 0 && (data == NULL || len == 0))
		status = -EIO;		/* every answer carries bytes */
	if (status == 0) {
		if ((r->out = gnutls_malloc(len)) == NULL)
			status = -ENOMEM;
		else {
			memcpy(r->out, data, len);
			r->outlen = len;
		}
		us = (uint64_t)((ev_time() - r->t_sent) * 1e6);
		st->keyd_latency_buckets[ipc_lat_bucket(us)]++;
		st->keyd_latency_us_total += us;
		if (us > st->keyd_latency_us_max)
			st->keyd_latency_us_max = us;
	}
	if (status < 0)
		st->keyd_failures++;
	r->status = status;
	if (errmsg != NULL)
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg);
	kchan_timer_update(ch);
	coro_resume(r->co);
}

/* The connection's close aborts its key operation (loop stack only). */
void
kchan_req_abort(struct kchan_req *r, int err)
{
	if (r == NULL || r->magic != KCHAN_REQ_MAGIC)
		fatalx("%s: bad request", __func__);
	kchan_req_finish(r->ch, r, err, NULL, 0, NULL);
}

/* Send what the socket refused earlier, oldest first. */
static void
kchan_flush(struct kchan *ch)
{
	struct kchan_req *r;
	int rc;

	for (r = ch->head; r != NULL && ch->nunsent > 0; r = r->next) {
		if (r->sent || r->id == 0)
			continue;	/* sent, or waiting for a channel */
		rc = ipc_send(ch->fd, r->type, r->id, r->payload, r->len, NULL,
		    0);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			errno = -rc;
			log_warn("%s: send to keyd", __func__);
			kchan_down(ch, -ECONNRESET, "keyd channel broken", 1);
			return;
		}
		r->sent = 1;
		ch->nunsent--;
	}
	kchan_io_update(ch);
}

/* ---- calls from a handshake coroutine ------------------------------------- */

int
kchan_ready(const struct kchan *ch)
{
	return ch->state == KCHAN_READY && !ch->broken;
}

/*
 * May a key operation be asked for now?  On a ready channel, and while a
 * lost one is being replaced (it waits for the next: see the top).
 */
int
kchan_usable(const struct kchan *ch)
{
	return kchan_ready(ch) || ch->lost;
}

/*
 * Send one request and yield until it is answered; the coroutine's only
 * way to wait.  *pending points at the request meanwhile, for
 * kchan_req_abort().  Returns 0 with *out filled (gnutls_malloc'd), or a
 * negative errno: -ENOTCONN (no channel, or it broke), -ETIMEDOUT,
 * -ECONNRESET (the channel went away), -ECANCELED (aborted), or keyd's
 * refusal with its reason in err.
 */
int
kchan_call(struct kchan *ch, uint16_t type, const uint8_t *payload,
    size_t len, const char *peer, struct kchan_req **pending,
    gnutls_datum_t *out, char *err, size_t errlen)
{
	struct kchan_req req;
	int rc;

	out->data = NULL;
	out->size = 0;
	if (errlen > 0)
		err[0] = '\0';
	if (coro_self() == NULL)
		fatalx("%s: not on a coroutine", __func__);
	if (!kchan_usable(ch)) {
		ch->stats->keyd_failures++;
		return -ENOTCONN;
	}

	memset(&req, 0, sizeof(req));
	req.magic = KCHAN_REQ_MAGIC;
	req.type = type;
	req.ch = ch;
	req.co = coro_self();
	req.peer = peer;
	req.payload = payload;
	req.len = len;
	req.t_sent = ev_time();
	req.deadline = ev_now(ch->loop) + ch->timeout_ms / 1000.;

	/* No channel yet: wait for the next one, unsent, like a full socket. */
	rc = -EAGAIN;
	if (kchan_ready(ch)) {
		kchan_req_hash(ch, &req);
		rc = ipc_send(ch->fd, type, req.id, payload, len, NULL, 0);
	}
	if (rc < 0 && rc != -EAGAIN) {
		/*
		 * The channel is gone but we are on a coroutine: mark it and
		 * let the loop take it down (it resumes other coroutines).
		 */
		errno = -rc;
		log_warn("%s: send to keyd", __func__);
		kchan_req_unhash(ch, &req);
		ch->broken = 1;
		ev_feed_event(ch->loop, &ch->io, EV_READ);
		ch->stats->keyd_failures++;
		return -ENOTCONN;
	}
	req.sent = rc == 0;
	kchan_req_link(ch, &req);
	if (!req.sent)
		ch->nunsent++;
	ch->stats->keyd_requests++;
	kchan_io_update(ch);
	if (ch->head == &req)
		kchan_timer_update(ch);

	*pending = &req;
	coro_yield();
	*pending = NULL;

	if (req.status == 0) {
		out->data = req.out;
		out->size = (unsigned)req.outlen;
		return 0;
	}
	if (errlen > 0)
		snprintf(err, errlen, "%s", req.errmsg);
	return req.status;
}

/* ---- the channel ----------------------------------------------------------- */

void
kchan_init(struct kchan *ch, unsigned timeout_ms,
    struct ipc_worker_stats *stats, const struct kchan_hooks *hooks)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = -1;
	ch->timeout_ms = timeout_ms;
	ch->stats = stats;
	ch->hooks = *hooks;
	ch->next_id = 1;
	ev_init(&ch->io, worker_dispatch_keyd);
	ev_init(&ch->req_timer, kchan_req_timer_cb);
	ev_init(&ch->setup_timer, kchan_setup_timer_cb);
}

static unsigned
kchan_setup_ms(const struct kchan *ch)
{
	return ch->timeout_ms < KCHAN_SETUP_MIN_MS ? KCHAN_SETUP_MIN_MS :
	    ch->timeout_ms;
}

/* One message of the start-up exchange: 0, or -errno (EOF is a reset). */
static int
kchan_recv_wait(int fd, int64_t deadline)
{
	int r;

	r = ipc_recv_wait(fd, &kchan_ends, &kchan_msg, deadline);
	if (r == 0)
		return -ECONNRESET;
	return r < 0 ? r : 0;
}

static int
kchan_key_list(struct kchan *ch, const struct ipc_msg *msg, int initial)
{
	static struct ipc_key_info keys[IPC_MAX_KEYS_HELD];
	unsigned n;

	if (ipc_key_list_decode(msg->payload, msg->hdr.len, keys,
	    IPC_MAX_KEYS_HELD, &n) < 0) {
		log_warnx("kchan: malformed key list from keyd");
		return -EBADMSG;
	}
	return ch->hooks.keys(ch->hooks.arg, keys, n, initial);
}

/*
 * Start-up exchange on the first channel, before the loop exists and
 * before the privilege drop: hello both ways, then the key list.  fd < 0:
 * keyd was not ready; the master will hand a channel (kchan_replace()).
 */
int
kchan_start(struct kchan *ch, int fd)
{
	int64_t deadline;
	int r, fl;

	ch->fd = fd;
	if (fd < 0) {
		ch->state = KCHAN_DOWN;
		return 0;
	}
	ch->generation = 1;
	deadline = ipc_now_ms() + kchan_setup_ms(ch);

	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0)
		return r;
	if ((r = kchan_recv_wait(fd, deadline)) < 0)
		return r;
	if ((r = ipc_hello_check(&kchan_msg, IPC_ROLE_KEYD)) < 0) {
		log_warnx("kchan: keyd's hello: %s (type %s)", strerror(-r),
		    ipc_type_name(kchan_msg.hdr.type));
		return r;
	}
	ch->list_id = kchan_id_next(ch);
	if ((r = ipc_send(fd, IPC_KEY_LIST, ch->list_id, NULL, 0, NULL, 0)) < 0)
		return r;
	if ((r = kchan_recv_wait(fd, deadline)) < 0)
		return r;
	if (kchan_msg.hdr.type != IPC_KEY_LIST_REPLY ||
	    kchan_msg.hdr.id != ch->list_id) {
		log_warnx("kchan: expected KEY_LIST_REPLY, got %s",
		    ipc_type_name(kchan_msg.hdr.type));
		return -EPROTO;
	}
	if ((r = kchan_key_list(ch, &kchan_msg, 1)) < 0)
		return r;
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	ch->state = KCHAN_READY;
	return 0;
}

/* The loop exists: watch the channel. */
void
kchan_attach(struct kchan *ch, struct ev_loop *loop)
{
	ch->loop = loop;
	kchan_io_update(ch);
}

/* A channel handed by kchan_replace() is ready (0) or failed. */
static void
kchan_setup_answer(struct kchan *ch, int status)
{
	if (ch->state != KCHAN_HELLO && ch->state != KCHAN_KEYS)
		return;
	if (ch->loop != NULL)
		ev_timer_stop(ch->loop, &ch->setup_timer);
	ch->hooks.ready(ch->hooks.arg, ch->token, status);
}

/*
 * Drop the channel and close the fd.  carry: it was lost (see the top),
 * and the requests in flight wait for the next one, but for those that
 * already survived one; otherwise every one fails (each resumes its
 * handshake, which ends).  Loop stack only.
 */
static void
kchan_down(struct kchan *ch, int err, const char *why, int carry)
{
	struct kchan_req *r, *next;

	kchan_setup_answer(ch, err < 0 ? err : -EIO);
	if (ch->fd >= 0) {
		log_warnx("kchan: keyd channel %u down: %s; %u request(s) in "
		    "flight %s", ch->generation, why, ch->npending, carry ?
		    "wait for the next channel" : "fail");
		if (ch->loop != NULL)
			ev_io_stop(ch->loop, &ch->io);
		close(ch->fd);
		ch->fd = -1;
	}
	ch->state = KCHAN_DOWN;
	ch->broken = 0;
	ch->lost = carry;
	for (r = ch->head; r != NULL; r = next) {
		next = r->next;
		if (!carry || r->carried) {
			kchan_req_finish(ch, r, -ECONNRESET, NULL, 0, NULL);
			continue;
		}
		r->carried = r->sent || r->id != 0;
		kchan_req_unhash(ch, r);
		if (r->sent)
			ch->nunsent++;
		r->sent = 0;
	}
}

/* The next channel is ready: what waited for it goes out, in order. */
static void
kchan_requeue(struct kchan *ch)
{
	struct kchan_req *r;

	ch->lost = 0;
	for (r = ch->head; r != NULL; r = r->next)
		if (!r->sent && r->id == 0)
			kchan_req_hash(ch, r);
	if (ch->nunsent > 0)
		kchan_flush(ch);
}

/* keyd said something it must not: see the header comment. */
static void
kchan_violation(struct kchan *ch, const char *what)
{
	int ready = ch->state == KCHAN_READY;

	log_warnx("kchan: protocol violation from keyd: %s", what);
	kchan_down(ch, -EPROTO, "protocol violation", 0);
	if (ready)
		ch->hooks.violation(ch->hooks.arg);
}

/* The master hands a new channel (keyd restarted). */
void
kchan_replace(struct kchan *ch, int fd, uint32_t token)
{
	int r, fl;

	if (ch->fd >= 0)
		kchan_down(ch, -ECONNRESET, "replaced by the master", 1);
	ch->fd = fd;
	ch->generation++;
	ch->next_id = 1;
	ch->wrapped = 0;
	ch->token = token;
	ch->state = KCHAN_HELLO;
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		log_warn("kchan: new keyd channel");
		kchan_down(ch, -errno, "fcntl", 0);
		return;
	}
	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0) {
		kchan_down(ch, r, "hello not sent", 0);
		return;
	}
	kchan_io_update(ch);
	ev_timer_stop(ch->loop, &ch->setup_timer);
	ev_timer_set(&ch->setup_timer, kchan_setup_ms(ch) / 1000., 0.);
	ev_timer_start(ch->loop, &ch->setup_timer);
	log_info("kchan: new keyd channel %u from the master", ch->generation);
}

static void
kchan_setup_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct kchan *ch = container_of(t, struct kchan, setup_timer);

	if (ch->state == KCHAN_HELLO || ch->state == KCHAN_KEYS)
		kchan_down(ch, -ETIMEDOUT, "no hello / key list in time", 0);
}

static void
kchan_req_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct kchan *ch = container_of(t, struct kchan, req_timer);
	ev_tstamp now = ev_now(loop);

	while (ch->head != NULL && ch->head->deadline <= now + 0.0005) {
		log_warnx("kchan: %s: keyd did not answer request %u in %u ms",
		    ch->head->peer, ch->head->id, ch->timeout_ms);
		kchan_req_finish(ch, ch->head, -ETIMEDOUT, NULL, 0, NULL);
	}
	kchan_timer_update(ch);
}

/* An answer to a request in flight. */
static void
kchan_answer(struct kchan *ch, const struct ipc_msg *msg)
{
	struct kchan_req *r;
	struct ipc_reply rep;
	struct ipc_error err;
	uint16_t want;

	if ((r = kchan_req_find(ch, msg->hdr.id)) == NULL) {
		if (msg->hdr.id == 0 ||
		    (!ch->wrapped && msg->hdr.id >= ch->next_id)) {
			kchan_violation(ch, "answer to a request never sent");
			return;
		}
		log_debug("kchan: late keyd answer %u ignored", msg->hdr.id);
		return;
	}
	if (msg->hdr.type == IPC_ERROR) {
		if (ipc_error_decode(msg->payload, msg->hdr.len, &err) < 0) {
			kchan_violation(ch, "malformed ERROR");
			return;
		}
		log_info("kchan: %s: keyd refused %s: %s (%d)", r->peer,
		    ipc_type_name(r->type), err.msg, err.code);
		kchan_req_finish(ch, r, err.code, NULL, 0, err.msg);
		return;
	}
	want = r->type == IPC_SIGN ? IPC_SIGN_REPLY : IPC_DECRYPT_REPLY;
	if (msg->hdr.type != want ||
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0) {
		kchan_violation(ch, "wrong or malformed answer");
		return;
	}
	if (rep.status < 0) {
		kchan_req_finish(ch, r, rep.status, NULL, 0, NULL);
		return;
	}
	if (rep.data_len == 0) {
		kchan_violation(ch, "empty signature");
		return;
	}
	kchan_req_finish(ch, r, 0, rep.data, rep.data_len, NULL);
}

/* One message from keyd, by the state of the channel. */
static void
kchan_handle(struct kchan *ch, struct ipc_msg *msg)
{
	int r;

	switch (ch->state) {
	case KCHAN_HELLO:
		if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0) {
			kchan_violation(ch, r == -EPROTO ?
			    "hello: wrong type or version" : "hello: bad role");
			return;
		}
		ch->list_id = kchan_id_next(ch);
		if ((r = ipc_send(ch->fd, IPC_KEY_LIST, ch->list_id, NULL, 0,
		    NULL, 0)) < 0) {
			kchan_down(ch, r, "key list request not sent", 0);
			return;
		}
		ch->state = KCHAN_KEYS;
		return;
	case KCHAN_KEYS:
		if (msg->hdr.type != IPC_KEY_LIST_REPLY ||
		    msg->hdr.id != ch->list_id) {
			kchan_violation(ch, "expected the key list");
			return;
		}
		if (kchan_key_list(ch, msg, 0) < 0) {
			kchan_violation(ch, "bad key list");
			return;
		}
		kchan_setup_answer(ch, 0);
		ch->state = KCHAN_READY;
		log_info("kchan: keyd channel %u ready%s", ch->generation,
		    ch->npending > 0 ? "; requests that waited go out" : "");
		kchan_requeue(ch);
		return;
	case KCHAN_READY:
		switch (msg->hdr.type) {
		case IPC_SIGN_REPLY:
		case IPC_DECRYPT_REPLY:
		case IPC_ERROR:
			kchan_answer(ch, msg);
			return;
		default:
			kchan_violation(ch, ipc_type_name(msg->hdr.type));
			return;
		}
	case KCHAN_DOWN:
		return;
	}
}

/* The channel's watcher: flush what waits, then read keyd's answers. */
static void
worker_dispatch_keyd(struct ev_loop *loop, ev_io *io, int revents)
{
	struct kchan *ch = container_of(io, struct kchan, io);
	unsigned gen = ch->generation;
	int i, r;

	if (ch->broken) {
		kchan_down(ch, -ECONNRESET, "send failed", 1);
		return;
	}
	if ((revents & EV_WRITE) && ch->nunsent > 0)
		kchan_flush(ch);
	if (!(revents & EV_READ))
		return;
	/* Stop when the channel went down or was replaced meanwhile. */
	for (i = 0; i < KCHAN_RECV_BATCH && ch->fd >= 0 &&
	    ch->generation == gen; i++) {
		r = ipc_recv(ch->fd, &kchan_ends, &kchan_msg);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r == 0) {
			kchan_down(ch, -ECONNRESET, "keyd closed the channel", 1);
			return;
		}
		if (r < 0) {
			if (r == -ECONNRESET || r == -EPIPE) {
				kchan_down(ch, r, strerror(-r), 1);
				return;
			}
			kchan_violation(ch, strerror(-r));
			return;
		}
		kchan_handle(ch, &kchan_msg);
	}
}
