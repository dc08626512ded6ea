/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.c -- the one owner of a client connection: creation at accept,
 * event routing by state, the verdicts of the leaves applied, timeouts,
 * the end, and the one log line written then.
 *
 * Who does what.  The leaves work on their part of struct conn and return
 * what should happen: tls.c drives the handshake and says done / wait /
 * retry / failed; backend.c connects the backend; proxy.c pumps and says
 * which events it waits for (c->wants) or that the connection is finished;
 * reneg.c decides renegotiations and says which timer it wants; mail.c
 * moves a STARTTLS frontend's dialogue before the upgrade.  Only this
 * file changes c->state, arms and stops the connection's watchers and
 * timers, and ends and frees a connection (conn_end()); a leaf that finds
 * the connection must end records why (reason_set()) and says so.
 *
 * A connection whose handshake is parked waiting for keyd is never freed
 * under the coroutine: conn_end() aborts the key operation, which lets the
 * handshake unwind, and the coroutine's end (conn_handshake_finished())
 * frees it.
 *
 * Its one log line is written when it ends (connlog.c says what it holds).
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "util.h"
#include "cred.h"
#include "connlog.h"
#include "kchan.h"
#include "mail.h"
#include "defer.h"
#include "pace.h"
#include "backend.h"
#include "btls.h"
#include "pphdr.h"
#include "proxy.h"
#include "reason.h"
#include "rekey.h"
#include "reneg.h"
#include "sock.h"
#include "state.h"
#include "connlist.h"
#include "tls.h"
#include "transcript.h"
#include "conn.h"

static void	conn_client_cb(struct ev_loop *loop, ev_io *io, int revents);
static void	conn_backend_cb(struct ev_loop *loop, ev_io *io, int revents);
static void	conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void	conn_rekey_timer_cb(struct ev_loop *loop, ev_timer *t,
		    int revents);
static void	conn_handshake_step(struct conn *c);
static void	conn_pump(struct conn *c);
static void	conn_end(struct conn *c);
static void	conn_connect(struct conn *c);

/* --- watchers and timers --------------------------------------------------- */

/* A one-shot timeout (handshake, backend connect); 0 ms = none. */
static void
conn_timer_once(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	if (ms == 0)
		return;
	ev_timer_set(&c->timer, ms / 1000., 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* The idle timeout: restarted by conn_timer_touch() on traffic. */
static void
conn_timer_idle(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	c->timer.repeat = ms / 1000.;
	if (ms > 0)
		ev_timer_again(c->w->loop, &c->timer);
}

static void
conn_timer_touch(struct conn *c)
{
	c->t_moved = ev_now(c->w->loop);
	if ((c->state == CONN_PROXY || c->state == CONN_MAIL) &&
	    c->timer.repeat > 0.)
		ev_timer_again(c->w->loop, &c->timer);
}

/* The timer the renegotiation machine asked for, if it asked. */
static void
conn_rekey_timer_sync(struct conn *c)
{
	struct reneg *r = &c->reneg;

	if (!r->timer_set)
		return;
	r->timer_set = 0;
	ev_timer_stop(c->w->loop, &c->rekey_timer);
	if (r->timer_s <= 0.)
		return;
	ev_timer_set(&c->rekey_timer, r->timer_s, 0.);
	ev_timer_start(c->w->loop, &c->rekey_timer);
}

static void
conn_watch(struct ev_loop *loop, ev_io *io, int fd, int events)
{
	if (events == 0) {
		ev_io_stop(loop, io);
		return;
	}
	if (ev_is_active(io) && io->fd == fd &&
	    (io->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, io);
	ev_io_set(io, fd, events);
	ev_io_start(loop, io);
}

static void
conn_client_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->cio, c->cfd, events);
}

static void
conn_backend_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->bio, c->bfd, events);
}

/* The one place c->state changes; first handshakes are counted (worker.c
 * stops accepting at max-pending-handshakes). */
static void
conn_state(struct conn *c, enum conn_state s)
{
	struct worker *w = c->w;

	if (s == CONN_HANDSHAKE)
		w->hs_open++;
	else if (c->state == CONN_HANDSHAKE && w->hs_open > 0) {
		w->hs_open--;
		if (s != CONN_CLOSED && w->load_changed != NULL)
			w->load_changed(w);	/* conn_gone tells the rest */
	}
	c->state = s;
}

/* --- birth and end --------------------------------------------------------- */

/*
 * A new client connection on frontend wf.  Takes fd over; the connection
 * may be over (its log line written) by the time this returns.
 */
void
conn_new(struct worker_frontend *wf, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct worker *w = wf->w;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("%s: calloc", __func__);
		close(fd);
		return;
	}
	c->magic = CONN_MAGIC;
	c->w = w;
	c->wf = wf;
	c->state = CONN_CLOSED;
	/* with accept-proxy, the balancer's PROXY header comes first;
	 * STARTTLS (starttls =) connects the backend before the handshake */
	conn_state(c, wf->fe->accept_proxy ? CONN_PROXYHDR : wf->fe->starttls ?
	    CONN_CONNECTING : CONN_HANDSHAKE);
	c->cfd = fd;
	c->bfd = -1;
	c->t_start = ev_time();
	sock_peer_name(c->peer, sizeof(c->peer), sa, salen);
	pphdr_init(c, sa, salen);
	ev_io_init(&c->cio, conn_client_cb, fd, EV_READ);
	ev_init(&c->bio, conn_backend_cb);
	ev_init(&c->timer, conn_timer_cb);
	ev_init(&c->rekey_timer, conn_rekey_timer_cb);

	connlist_link(w, c);
	WORKER_COUNT(c, conns_total, 1);

	if (tls_session_new(c) < 0) {
		reason_set(&c->why, "TLS session setup failed");
		conn_end(c);
	} else if (c->state == CONN_CONNECTING) {
		conn_connect(c);	/* STARTTLS: the backend first */
	} else {
		conn_timer_once(c, wf->fe->handshake_timeout_ms);
		ev_io_start(w->loop, &c->cio);
	}
}

static void
conn_watchers_stop(struct conn *c)
{
	struct ev_loop *loop = c->w->loop;

	ev_io_stop(loop, &c->cio);
	ev_io_stop(loop, &c->bio);
	ev_timer_stop(loop, &c->timer);
	ev_timer_stop(loop, &c->rekey_timer);
}

/*
 * End the connection for the reason already recorded: log its line and
 * free everything.  If its handshake is parked on a coroutine, the key
 * operation it waits for is aborted first and the end completes when the
 * handshake has unwound (conn_handshake_finished()).  Nothing may touch c
 * afterwards either way.
 */
static void
conn_end(struct conn *c)
{
	struct worker *w = c->w;

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	if (c->state == CONN_CLOSED)
		return;

	if (c->in_coro) {
		c->hs.cancelled = 1;
		conn_watchers_stop(c);
		if (c->hs.pending != NULL)
			kchan_req_abort(c->hs.pending, -ECANCELED);
		return;
	}

	/* No close_notify here: that is the pump's, after a clean end only. */
	conn_state(c, CONN_CLOSED);
	connlog_write(c);
	conn_watchers_stop(c);
	backend_master_unwait(c);
	pace_forget(c);
	defer_forget(c);
	rekey_release(c);
	if (c->session != NULL)
		gnutls_deinit(c->session);
	c->session = NULL;
	cred_unref(c->cred);
	cred_unref(c->cred_old);
	c->cred = c->cred_old = NULL;
	transcript_reset(&c->tr);
	proxy_free(c);
	mail_free(c);
	pphdr_free(c);
	btls_free(c);
	if (c->cfd >= 0) {
		sock_input_discard(c->cfd);
		close(c->cfd);
	}
	if (c->bfd >= 0)
		close(c->bfd);

	connlist_unlink(w, c);
	c->magic = 0;
	free(c);
	w->conn_gone(w);
}

/* Record why (the first cause wins), then end it; see conn_end(). */
static void __attribute__((format(printf, 2, 3)))
conn_close(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reason_vset(&c->why, fmt, ap);
	va_end(ap);
	conn_end(c);
}

/* --- the handshake ----------------------------------------------------------- */

/* Proxying starts: buffers, the idle timer, renegotiation, the first pump. */
static void
conn_proxy_start(struct conn *c)
{
	struct reneg_in in;
	int r;

	if (proxy_start(c) < 0) {
		conn_close(c, "out of memory");
		return;
	}
	if ((r = pphdr_out(c)) < 0 || (r = btls_start(c)) < 0) {
		conn_close(c, "backend set-up: %s", strerror(-r));
		return;
	}
	conn_state(c, CONN_PROXY);
	conn_backend_watch(c, 0);
	conn_timer_idle(c, c->wf->fe->idle_timeout_ms);
	tls_reneg_in(c, &in);
	reneg_start(&c->reneg, c->wf->fe, &in);
	conn_rekey_timer_sync(c);
	conn_pump(c);
}

/* Before STARTTLS: move the dialogue, then do what mail.c says. */
static void
conn_mail_step(struct conn *c)
{
	enum mail_result r = mail_run(c);

	if (r == MAIL_CLOSE) {
		conn_end(c);
	} else if (r == MAIL_UPGRADE) {		/* c->upgraded: mail.c's */
		conn_backend_watch(c, 0);
		conn_state(c, CONN_HANDSHAKE);
		conn_timer_once(c, c->wf->fe->handshake_timeout_ms);
		conn_handshake_step(c);
	} else {
		if (c->wants.moved)
			conn_timer_touch(c);
		conn_client_watch(c, c->wants.client);
		conn_backend_watch(c, c->wants.backend);
		if (c->wants.more)
			defer_conn(c, 0);
	}
}

/* The backend is connected: the STARTTLS dialogue, or proxying. */
static void
conn_backend_up(struct conn *c)
{
	if (!c->wf->fe->starttls || c->upgraded) {
		conn_proxy_start(c);
		return;
	}
	conn_state(c, CONN_MAIL);
	conn_timer_idle(c, c->wf->fe->idle_timeout_ms);
	conn_mail_step(c);
}

/* A unix: backend: the master connects it and hands the socket over. */
static void
conn_backend_ask(struct conn *c)
{
	struct worker *w = c->w;
	int r;

	if ((r = w->backend_ask(w, c->wf->fe->index, &c->backend_id)) < 0) {
		w->stats.backend_errors++;
		conn_close(c, "backend connect failed: cannot ask the master: "
		    "%s", strerror(-r));
		return;
	}
	backend_master_wait(c);
	conn_timer_once(c, c->wf->fe->backend_connect_timeout_ms);
}

/*
 * The master's answer to IPC_BACKEND_CONNECT id: status and, on success,
 * the connected socket, which this takes over.  A connection that ended
 * meanwhile does not want it any more.
 */
void
conn_backend_arrived(struct worker *w, uint32_t id, int status, int fd)
{
	struct conn *c = backend_master_waiter(w, id);

	if (c == NULL || c->state != CONN_CONNECTING) {
		if (fd >= 0)
			close(fd);
		return;
	}
	backend_master_unwait(c);
	if (backend_connected_by_master(c, status, fd) == BACKEND_CONNECTED)
		conn_backend_up(c);
	else
		conn_end(c);
}

/* The first handshake is done (STARTTLS: none yet): connect the backend. */
static void
conn_connect(struct conn *c)
{
	conn_state(c, CONN_CONNECTING);
	conn_client_watch(c, 0);	/* client data waits in the kernel */
	switch (backend_connect(c)) {
	case BACKEND_CONNECTED:
		conn_backend_up(c);
		return;
	case BACKEND_CONNECTING:
		conn_backend_watch(c, EV_WRITE);
		conn_timer_once(c, c->wf->fe->backend_connect_timeout_ms);
		return;
	case BACKEND_VIA_MASTER:
		conn_backend_ask(c);
		return;
	case BACKEND_CONNECT_FAILED:
		conn_end(c);
		return;
	}
}

/* A renegotiation handshake is done: the renegotiation machine hears it. */
static void
conn_reneg_done(struct conn *c)
{
	struct reneg_in in;

	log_info("reneg: %s: renegotiated (%s, %s), certificate generation %u",
	    c->peer, c->reneg.by_client ? "client-initiated" :
	    "server-initiated", tls_cipher_name(c), c->cred->generation);
	tls_reneg_in(c, &in);
	reneg_hs_done(&c->reneg, c->wf->fe, &in);
	cred_unref(c->cred_old);
	c->cred_old = NULL;
	conn_rekey_timer_sync(c);
	conn_pump(c);
}

/* What a handshake call said, first (STARTTLS: after it) or renegotiated. */
static void
conn_handshake_result(struct conn *c, int r)
{
	int reneg = c->state == CONN_PROXY;

	switch (tls_handshake_verdict(c, r, reneg)) {
	case TLS_DONE:
		if (reneg) {
			conn_reneg_done(c);
			return;
		}
		tls_alpn_note(c);
		if (c->upgraded)
			conn_proxy_start(c);	/* its backend is connected */
		else
			conn_connect(c);
		return;
	case TLS_WANT_READ:
		conn_client_watch(c, EV_READ);
		return;
	case TLS_WANT_WRITE:
		conn_client_watch(c, EV_WRITE);
		return;
	case TLS_RETRY:
		conn_client_watch(c, EV_READ);
		ev_feed_event(c->w->loop, &c->cio, EV_READ);
		return;
	case TLS_APPDATA:
		if (reneg) {
			c->flags |= CF_HS_APPDATA;
			conn_pump(c);
			return;
		}
		/* FALLTHROUGH */
	case TLS_FAILED:
		conn_end(c);
		return;
	}
}

/*
 * The client's socket became readable while its handshake waits for keyd:
 * the handshake owns the session, so only a peek.  A client that closed
 * or reset is noticed now, and its key request cancelled (conn_end()),
 * not when keyd answers.  Data is the client's next message: it waits for
 * the handshake, and the watcher rests until then.
 */
static void
conn_parked_peek(struct conn *c)
{
	int r = sock_peek(c->cfd);

	if (r == SOCK_PEEK_EOF)
		conn_close(c, "client closed during the handshake");
	else if (r < 0)
		conn_close(c, "client error during the handshake: %s",
		    strerror(-r));
	else if (r == SOCK_PEEK_DATA)
		conn_client_watch(c, 0);
}

/* The coroutine of a parked handshake ended (keyd answered, or an abort). */
static void
conn_handshake_finished(struct conn *c)
{
	c->parked = 0;
	if (c->hs.cancelled) {
		if (c->state == CONN_HANDSHAKE)
			WORKER_COUNT(c, handshakes_failed, 1);
		conn_close(c, "handshake aborted");
		return;
	}
	conn_handshake_result(c, c->hs_ret);
}

/* Drive the handshake one step: the client fd is ready, or it begins. */
static void
conn_handshake_step(struct conn *c)
{
	int r;

	if (c->in_coro)
		return;		/* the parked handshake owns the session */
	r = tls_handshake_step(c, conn_handshake_finished);
	if (r == TLS_HS_PARKED) {
		/*
		 * Waiting for keyd: nothing may touch the session meanwhile;
		 * the client's socket is only watched for its end.
		 */
		c->parked = 1;
		conn_client_watch(c, EV_READ);
		return;
	}
	conn_handshake_result(c, r);
}

/* The balancer's PROXY header (accept-proxy), then the handshake. */
static void
conn_proxyhdr_step(struct conn *c)
{
	switch (pphdr_in(c)) {
	case PPHDR_DONE:
		if (c->wf->fe->starttls) {
			conn_connect(c);
			return;
		}
		conn_state(c, CONN_HANDSHAKE);
		conn_handshake_step(c);
		return;
	case PPHDR_WAIT:
		return;
	case PPHDR_FAILED:
		conn_end(c);
		return;
	}
}

/* --- renegotiation ----------------------------------------------------------- */

/*
 * The client's ClientHello is in and no record send is pending: run the
 * new handshake on the frontend's current credentials.
 */
static void
conn_reneg_begin(struct conn *c)
{
	int r;

	reneg_hs_start(&c->reneg, c->wf->fe);
	proxy_hs_begin(c);
	conn_client_watch(c, 0);
	if ((r = tls_session_cred_switch(c)) < 0) {
		conn_close(c, "renegotiation failed: %s", gnutls_strerror(r));
		return;
	}
	transcript_reset(&c->tr);
	conn_rekey_timer_sync(c);
	conn_handshake_step(c);
}

/* The renegotiation handshake's application data, then the handshake. */
static void
conn_hs_appdata(struct conn *c)
{
	switch (proxy_hs_appdata(c)) {
	case PROXY_APPDATA_READ:
		conn_handshake_step(c);
		return;
	case PROXY_APPDATA_FULL:
		conn_client_watch(c, 0);
		return;
	case PROXY_APPDATA_CLOSE:
		conn_end(c);
		return;
	}
}

/*
 * Ask one connection to renegotiate (TLS 1.2) or update its keys
 * (TLS 1.3; sweep.c).  Returns 1 if asked, 0 if it cannot be now (still in
 * its first handshake, closing, already renegotiating, or no safe
 * renegotiation).  The pump sends the request; c stays valid.
 */
int
conn_ask(struct conn *c, const char *why)
{
	struct reneg_in in;
	int asked;

	if (c->state != CONN_PROXY || c->in_coro)
		return 0;
	tls_reneg_in(c, &in);
	asked = reneg_ask(&c->reneg, c->wf->fe, &in, why);
	conn_rekey_timer_sync(c);
	if (asked)
		rekey_gate(c);
	return asked;
}

/*
 * The drain is nearly over (sweep.c).  A connection with nothing in flight
 * (proxy_quiet(): IMAP IDLE, keep-alive) gets close_notify and its log
 * line (proxy.c); one in its handshake ends now; one moving data goes on
 * until the last call (hard) cuts it without close_notify: honestly.
 */
void
conn_drain(struct conn *c, int hard)
{
	if (c->state == CONN_CLOSED || (c->flags & CF_FLUSH_END))
		return;		/* unwinding, or closing already */
	if (c->state == CONN_PROXY && proxy_quiet(c, ev_now(c->w->loop))) {
		proxy_flush_end(c, 1, "worker stopping");
		defer_conn(c, 0);	/* the pump runs next turn */
	} else if (hard || c->state != CONN_PROXY)
		conn_close(c, hard ? "worker stopping: drain timeout" :
		    "worker stopping");
}

/* --- the pump ------------------------------------------------------------------ */

/* Pump, then do what it says. */
static void
conn_pump(struct conn *c)
{
	enum proxy_verdict v = proxy_run(c);

	switch (v) {
	case PROXY_CLOSE:
		conn_end(c);
		return;
	case PROXY_FINISHED:
		conn_close(c, "closed");
		return;
	default:
		break;
	}
	conn_rekey_timer_sync(c);
	rekey_gate(c);
	if (c->wants.moved)
		conn_timer_touch(c);
	conn_backend_watch(c, c->wants.backend);
	switch (v) {
	case PROXY_RENEG_HS:
		conn_reneg_begin(c);
		return;
	case PROXY_IN_HANDSHAKE:
	case PROXY_HS_APPDATA:
		/* The backend side goes on; the handshake owns the client's. */
		if (c->wants.more)
			defer_conn(c, 1);
		if (v == PROXY_HS_APPDATA)
			conn_hs_appdata(c);
		return;
	default:
		conn_client_watch(c, c->wants.client);
		if (c->wants.more)
			defer_conn(c, 0);
		return;
	}
}

/* --- events -------------------------------------------------------------------- */

static void
conn_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, cio);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	if (c->in_coro) {
		/* the parked handshake owns the session */
		if (c->parked && (revents & EV_READ))
			conn_parked_peek(c);
		return;
	}
	switch (c->state) {
	case CONN_PROXYHDR:
		conn_proxyhdr_step(c);
		break;
	case CONN_HANDSHAKE:
		conn_handshake_step(c);
		break;
	case CONN_PROXY:
		/* During a renegotiation handshake the client side is its. */
		if (c->reneg.state == RENEG_HANDSHAKE) {
			if (!(c->flags & CF_HS_APPDATA))
				conn_handshake_step(c);
			break;
		}
		proxy_client_ready(c, revents);
		conn_pump(c);
		break;
	case CONN_MAIL:
		conn_mail_step(c);
		break;
	case CONN_CONNECTING:
	case CONN_CLOSED:
		ev_io_stop(loop, io);
		break;
	}
}

static void
conn_backend_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, bio);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	switch (c->state) {
	case CONN_CONNECTING:
		switch (backend_connected(c)) {
		case BACKEND_CONNECTED:
			conn_backend_up(c);
			break;
		case BACKEND_CONNECTING:
		case BACKEND_VIA_MASTER:
			break;
		case BACKEND_CONNECT_FAILED:
			conn_end(c);
			break;
		}
		break;
	case CONN_PROXY:
		proxy_backend_ready(c, revents);
		conn_pump(c);
		break;
	case CONN_MAIL:
		conn_mail_step(c);
		break;
	case CONN_PROXYHDR:
	case CONN_HANDSHAKE:
	case CONN_CLOSED:
		ev_io_stop(loop, io);
		break;
	}
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	static const char *const why[] = {
		[CONN_PROXYHDR] = "PROXY header timeout",
		[CONN_HANDSHAKE] = "handshake timeout",
		[CONN_CONNECTING] = "backend connect timeout",
		[CONN_PROXY] = "idle timeout",
		[CONN_MAIL] = "idle timeout before STARTTLS",
	};
	struct conn *c = container_of(t, struct conn, timer);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	if (c->state == CONN_CLOSED || (size_t)c->state >= nitems(why))
		return;
	/* A parked handshake counts itself when it unwinds. */
	if (c->state == CONN_HANDSHAKE && !c->in_coro)
		WORKER_COUNT(c, handshakes_failed, 1);
	if (c->state == CONN_CONNECTING)
		c->w->stats.backend_errors++;
	conn_close(c, "%s", why[c->state]);
}

/* The renegotiation machine's timer: an interval, an answer or a deadline. */
static void
conn_rekey_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, rekey_timer);
	struct reneg_in in;

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	tls_reneg_in(c, &in);
	switch (reneg_timer(&c->reneg, c->wf->fe, &in)) {
	case RENEG_END:
		conn_close(c, "%s", c->reneg.why);
		return;
	case RENEG_FLUSH_END:
		proxy_flush_end(c, 0, "%s", c->reneg.why);
		conn_pump(c);
		return;
	default:
		break;
	}
	conn_rekey_timer_sync(c);
	rekey_gate(c);
}
