/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.c -- once the backend is connected (backend.c): pump plaintext
 * both ways.
 *
 * Memory per connection is bounded: two CONN_BUF_SIZE buffers, allocated
 * when proxying starts.  A side is read only while the buffer towards the
 * other side has room, so a slow reader holds the fast writer back
 * (back-pressure) instead of growing a queue.
 *
 * proxy_run() tries every step that can make progress -- TLS read into
 * c2b, c2b to the backend, backend read into b2c, b2c to TLS -- until none
 * can, then says (c->wants) exactly which events the blocked steps wait
 * for; conn.c arms those watchers.  The CF_*_BLOCKED bits say "this call
 * returned EAGAIN"; an event for that fd clears them.  GnuTLS rules kept here:
 * - gnutls_record_recv() may hold decrypted data the kernel no longer
 *   signals (gnutls_record_check_pending()); the read step is retried
 *   whenever c2b has room until it says GNUTLS_E_AGAIN, so that data is
 *   never stranded.
 * - gnutls_record_send() that returned GNUTLS_E_AGAIN is called again with
 *   the same data and length (tls_send_len) before anything else is sent,
 *   and b2c is not compacted meanwhile.  No alert and no gnutls_bye() is
 *   started while such a send is pending (proxy_ctl_flush()).
 * - gnutls_record_recv() can need to write (a TLS 1.3 KeyUpdate answer);
 *   then it is retried when the client fd is writable, before any send.
 * Half-close both ways: close_notify or EOF from the client, once c2b is
 * flushed, becomes shutdown(backend, SHUT_WR); EOF from the backend, once
 * b2c is flushed, becomes gnutls_bye(GNUTLS_SHUT_WR) (our close_notify).
 * The connection ends when both directions are closed and flushed.  The
 * idle timeout restarts on every byte moved.
 *
 * close_notify means "the backend ended normally and you have all it
 * sent": it is sent only then (and at a worker's drain, see below).  Every
 * other end is unclean, so that a client whose protocol ends its body at
 * the connection's end can tell a cut reply from a whole one:
 * - the backend fails (a reset, an error; CF_BACKEND_ABORT): nothing more
 *   goes to it, what it sent before still reaches the client, then the
 *   connection ends without close_notify;
 * - the client fails (a reset, a send that cannot go out;
 *   CF_CLIENT_GONE): what it sent before still reaches the backend, whose
 *   write side is then shut, and the backend's answer is read and dropped
 *   until it closes (closing a socket with unread data would reset it and
 *   could take data the backend has not read yet with it);
 * - a policy end (on-refusal or on-ignore = close; CF_FLUSH_END): neither
 *   side is read any more, both buffers are flushed -- the backend data
 *   held back while a HelloRequest was unanswered included -- and the
 *   connection ends without close_notify;
 * - a drain (the worker stops; CF_FLUSH_END | CF_DRAIN), for a connection
 *   with nothing in flight (proxy_quiet()): the same, with close_notify
 *   last -- the stream is whole and moat ends it; a connection still
 *   moving data when the drain runs out is cut by conn.c, uncleanly.
 * An end for which nothing can move any more (idle timeout, a failed
 * renegotiation, a fatal TLS error) is conn.c's, at once, and unclean too.
 *
 * TLS backends (backend-tls): the backend's transport is btls.c's, plain
 * or a GnuTLS client session; its handshake is the first backend step
 * (proxy_backend_handshake()), and until it is done only the client side
 * moves.  Its ends map onto the ones above (btls.c says how).
 *
 * Unix-socket backends: a worker has no file system and may make only
 * TCP sockets (sandbox_worker.c), so it cannot reach any unix socket of the
 * host.  The master connects a unix: backend for it (daemon/master/
 * master_backend.c) and passes the connected socket back; proxy_connect()
 * says PROXY_VIA_MASTER and conn.c asks.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "reason.h"
#include "noise.h"
#include "btls.h"
#include "hello.h"
#include "mail.h"
#include "reneg.h"
#include "state.h"
#include "tls.h"
#include "proxy.h"

#define PROXY_ROUNDS	8	/* pump rounds per wakeup, then yield to others */
#define PROXY_QUIET_S	0.25	/* no traffic this long: nothing in flight */

/* Outcome of one pump step. */
#define STEP_IDLE	0
#define STEP_MOVED	1
#define STEP_CLOSED	(-1)	/* the connection must end: c->why says why */

/* Move waiting bytes to the front if the tail is at the end; the room left. */
static size_t
proxy_buf_room(struct conn_buf *b)
{
	if (b->head == b->tail)
		b->head = b->tail = 0;
	else if (b->tail == CONN_BUF_SIZE && b->head > 0) {
		memmove(b->data, b->data + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	return CONN_BUF_SIZE - b->tail;
}

/* The two buffers, for the start of proxying: 0 or -ENOMEM. */
int
proxy_start(struct conn *c)
{
	uint8_t *p;

	if ((p = malloc(2 * CONN_BUF_SIZE)) == NULL)
		return -ENOMEM;
	c->c2b.data = p;
	c->b2c.data = p + CONN_BUF_SIZE;
	c->c2b.head = c->c2b.tail = 0;
	c->b2c.head = c->b2c.tail = 0;
	return 0;
}

static const char *
proxy_client_closed_why(const struct conn *c)
{
	return (c->flags & CF_CLIENT_NO_NOTIFY) ?
	    "client closed (no close_notify)" : "client closed";
}

/* The backend failed (see the top): its buffer is undeliverable. */
static int
proxy_backend_abort(struct conn *c, const char *what)
{
	c->w->stats.backend_errors++;
	reason_set(&c->why, "backend error: %s", what);
	c->flags |= CF_BACKEND_EOF | CF_BACKEND_SHUT | CF_BACKEND_ABORT;
	c->c2b.head = c->c2b.tail = 0;
	return STEP_MOVED;
}

/* The client's side failed (see the top): b2c is undeliverable. */
static int
proxy_client_gone(struct conn *c, int r)
{
	if (c->flags & CF_CLIENT_EOF)
		reason_set(&c->why, "%s", proxy_client_closed_why(c));
	else if (r == GNUTLS_E_PREMATURE_TERMINATION)
		reason_set(&c->why, "client reset the connection");	/* ECONNRESET */
	else
		reason_set(&c->why, "client error: %s", gnutls_strerror(r));
	c->flags |= CF_CLIENT_EOF | CF_CLIENT_GONE;
	c->b2c.head = c->b2c.tail = 0;
	c->tls_send_len = 0;
	c->ctl = 0;
	return STEP_MOVED;
}

/*
 * A TLS error.  The transport failing (a reset, a send or receive error)
 * leaves the client gone but what it sent still deliverable; a protocol
 * error (a bad record, an unexpected message) ends the connection now.
 */
static int
proxy_tls_error(struct conn *c, int r)
{
	if (r == GNUTLS_E_PUSH_ERROR || r == GNUTLS_E_PULL_ERROR ||
	    r == GNUTLS_E_PREMATURE_TERMINATION || (c->flags & CF_CLIENT_EOF))
		return proxy_client_gone(c, r);
	reason_set(&c->why, "client error: %s", gnutls_strerror(r));
	/* The alert TLS requires (bad_record_mac, record_overflow...), never
	 * close_notify: best effort, the connection ends either way. */
	(void)gnutls_alert_send_appropriate(c->session, r);
	return STEP_CLOSED;
}

static void
proxy_client_eof(struct conn *c, unsigned extra)
{
	c->flags |= CF_CLIENT_EOF | extra;
	if (!(c->flags & CF_BACKEND_EOF))
		reason_set(&c->why, "%s", proxy_client_closed_why(c));
}

/*
 * End the connection after a flush (see the top): why, and with drain our
 * close_notify last.  The pump does the rest; c stays valid.
 */
void
proxy_flush_end(struct conn *c, int drain, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reason_vset(&c->why, fmt, ap);
	va_end(ap);
	c->flags |= CF_FLUSH_END | (drain ? CF_DRAIN : 0);
	c->ctl &= ~(CTL_HELLO_REQUEST | CTL_KEY_UPDATE);
}

/* The machine asked for a HelloRequest or KeyUpdate: queue it. */
void
proxy_queue_reneg(struct conn *c)
{
	switch (c->reneg.queued) {
	case RENEG_SEND_HELLO_REQUEST:
		c->ctl |= CTL_HELLO_REQUEST;
		break;
	case RENEG_SEND_KEY_UPDATE:
		c->ctl |= CTL_KEY_UPDATE;
		break;
	case RENEG_SEND_NONE:
		break;
	}
}

/*
 * A record-layer event that is not data, for the renegotiation machine.
 * Returns 0 to go on, STEP_CLOSED if the connection must end (c->why
 * set), or a negative GnuTLS code for the caller to end it with.
 */
static int
proxy_reneg_event(struct conn *c, int ret)
{
	const struct frontend *fe = c->wf->fe;
	struct reneg_in in;

	tls_reneg_in(c, &in);
	switch (ret) {
	case GNUTLS_E_REHANDSHAKE:
		if (reneg_client_hello(&c->reneg, fe, &in) == RENEG_REFUSE) {
			c->alert = GNUTLS_A_NO_RENEGOTIATION;
			c->ctl |= CTL_ALERT;
		} else		/* a request still queued is answered already */
			c->ctl &= ~(CTL_HELLO_REQUEST | CTL_KEY_UPDATE);
		return 0;
	case GNUTLS_E_UNEXPECTED_PACKET:
		return reneg_unexpected(&c->reneg) < 0 ? ret : 0;
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		switch (reneg_alert(&c->reneg, fe, &in,
		    (int)gnutls_alert_get(c->session))) {
		case RENEG_FLUSH_END:
			proxy_flush_end(c, 0, "%s", c->reneg.why);
			return 0;
		case RENEG_END:
			reason_set(&c->why, "%s", c->reneg.why);
			return STEP_CLOSED;
		default:
			return 0;
		}
	default:
		return ret;
	}
}

/* Is this non-data record not an answer to a request of ours? */
static int
proxy_unasked(const struct conn *c, int ret)
{
	if (ret == GNUTLS_E_UNEXPECTED_PACKET)
		return 0;	/* GnuTLS dropping the ClientHello we refused */
	return !(ret == GNUTLS_E_WARNING_ALERT_RECEIVED &&
	    gnutls_alert_get(c->session) == GNUTLS_A_NO_RENEGOTIATION &&
	    reneg_awaits_answer(&c->reneg));
}

/* Count a non-data record (noise.h); STEP_CLOSED once there were too many. */
static int
proxy_noise(struct conn *c, int unasked)
{
	if (noise_record(c, unasked) != NOISE_END)
		return 0;
	c->ctl &= ~CTL_ALERT;	/* the record over the limit gets no answer */
	proxy_flush_end(c, 0, "client error: over %u warning alerts or refused "
	    "renegotiations", (unsigned)NOISE_MAX);
	return STEP_CLOSED;
}

/*
 * Client -> c2b.  Stops at a ClientHello that starts a renegotiation
 * handshake: from there GnuTLS's handshake reads.
 */
static int
proxy_tls_read(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	int moved = STEP_IDLE, r, unasked;
	ssize_t n;

	while (!(c->flags & (CF_CLIENT_EOF | CF_TLS_RD_BLOCKED |
	    CF_TLS_RD_WANTS_WR | CF_FLUSH_END)) &&
	    c->reneg.state < RENEG_HS_WANTED && !noise_turn_spent(c)) {
		if (proxy_buf_room(b) == 0)
			break;
		n = gnutls_record_recv(c->session, b->data + b->tail,
		    CONN_BUF_SIZE - b->tail);
		if (n > 0) {
			b->tail += (size_t)n;
			moved = STEP_MOVED;
			continue;
		}
		if (n == 0) {
			proxy_client_eof(c, 0);
			return STEP_MOVED;
		}
		switch (n) {
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED:
			c->flags |= gnutls_record_get_direction(c->session) ?
			    CF_TLS_RD_WANTS_WR : CF_TLS_RD_BLOCKED;
			return moved;
		case GNUTLS_E_PREMATURE_TERMINATION:
			proxy_client_eof(c, CF_CLIENT_NO_NOTIFY);
			return STEP_MOVED;
		case GNUTLS_E_REHANDSHAKE:
		case GNUTLS_E_WARNING_ALERT_RECEIVED:
		case GNUTLS_E_UNEXPECTED_PACKET:
			unasked = proxy_unasked(c, (int)n);
			if ((r = proxy_reneg_event(c, (int)n)) == STEP_CLOSED)
				return STEP_CLOSED;
			if (r < 0)
				return proxy_tls_error(c, r);
			if (n == GNUTLS_E_REHANDSHAKE)
				unasked = (c->ctl & CTL_ALERT) != 0; /* refused */
			if (proxy_noise(c, unasked) == STEP_CLOSED)
				return STEP_MOVED;
			moved = STEP_MOVED;
			continue;
		default:
			if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
				reason_set(&c->why, "client error: alert %s",
				    gnutls_alert_get_name(gnutls_alert_get(c->session)));
				return STEP_CLOSED;
			}
			if (!gnutls_error_is_fatal((int)n)) {
				log_debug("%s: %s: %s", __func__, c->peer,
				    gnutls_strerror((int)n));
				if (proxy_noise(c, 1) == STEP_CLOSED)
					return STEP_MOVED;
				moved = STEP_MOVED;
				continue;
			}
			return proxy_tls_error(c, (int)n);
		}
	}
	return moved;
}

/*
 * A TLS backend's handshake, after the connect: nothing else moves to or
 * from the backend until it is done.  A failure is a backend error.
 */
static int
proxy_backend_handshake(struct conn *c)
{
	char what[REASON_MAX];
	const char *why = "";

	if (btls_ready(c) || (c->flags & (CF_BE_RD_BLOCKED | CF_BE_WR_BLOCKED |
	    CF_BE_RD_WANTS_WR | CF_BACKEND_ABORT)))
		return STEP_IDLE;
	switch (btls_handshake(c, &why)) {
	case 0:
		return STEP_MOVED;
	case BIO_AGAIN:
		c->flags |= CF_BE_RD_BLOCKED;
		return STEP_IDLE;
	case BIO_AGAIN_WR:
		c->flags |= CF_BE_RD_WANTS_WR;
		return STEP_IDLE;
	default:
		snprintf(what, sizeof(what), "TLS handshake: %s", why);
		return proxy_backend_abort(c, what);
	}
}

/*
 * Does the backend get our close_notify with its write side's end?  When
 * the client sent its own, or a drain ends a whole stream; not for a
 * client that vanished (btls.c's header).
 */
static int
proxy_backend_notify(const struct conn *c)
{
	if (c->flags & CF_FLUSH_END)
		return (c->flags & CF_DRAIN) != 0;
	return !(c->flags & (CF_CLIENT_NO_NOTIFY | CF_CLIENT_GONE));
}

/* c2b -> backend, then the backend's write side closes after client EOF. */
static int
proxy_backend_write(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	int moved = STEP_IDLE;
	const char *why = "";
	ssize_t n;

	if (!btls_ready(c))
		return STEP_IDLE;
	if ((c->flags & CF_MAIL_B2C_MUTE) && b->head < b->tail)
		mail_b2c_unmute(c);	/* the client's first command in TLS */
	/* A TLS read that must write goes first (see the header comment). */
	while (b->head < b->tail &&
	    !(c->flags & (CF_BE_WR_BLOCKED | CF_BE_RD_WANTS_WR))) {
		n = btls_send(c, b->data + b->head, b->tail - b->head, &why);
		if (n > 0) {
			b->head += (size_t)n;
			c->bytes_c2b += (uint64_t)n;
			WORKER_COUNT(c, bytes_client_to_backend, (uint64_t)n);
			moved = STEP_MOVED;
			continue;
		}
		if (n == BIO_AGAIN) {
			c->flags |= CF_BE_WR_BLOCKED;
			break;
		}
		return proxy_backend_abort(c, why);
	}
	if (b->head == b->tail && (c->flags & (CF_CLIENT_EOF | CF_FLUSH_END)) &&
	    !(c->flags & (CF_BACKEND_SHUT | CF_BE_WR_BLOCKED))) {
		if (btls_shutdown(c, proxy_backend_notify(c)) == BIO_AGAIN) {
			c->flags |= CF_BE_WR_BLOCKED;
			return moved;
		}
		c->flags |= CF_BACKEND_SHUT;
		moved = STEP_MOVED;
	}
	return moved;
}

/* Backend -> b2c; once the client is gone, read and dropped. */
static int
proxy_backend_read(struct conn *c)
{
	struct conn_buf *b = &c->b2c;
	int moved = STEP_IDLE;
	const char *why = "";
	ssize_t n;

	if (!btls_ready(c))
		return STEP_IDLE;
	while (!(c->flags & (CF_BACKEND_EOF | CF_BE_RD_BLOCKED |
	    CF_BE_RD_WANTS_WR | CF_FLUSH_END))) {
		/* A pending record_send still points into b2c: no moving. */
		if (c->tls_send_len == 0)
			(void)proxy_buf_room(b);
		if (b->tail == CONN_BUF_SIZE)
			break;
		n = btls_recv(c, b->data + b->tail, CONN_BUF_SIZE - b->tail, &why);
		if (n > 0 && (c->flags & CF_CLIENT_GONE)) {
			b->head = b->tail = 0;	/* nobody to give it to */
			continue;
		}
		if (n > 0 && (c->flags & CF_MAIL_B2C_MUTE)) {
			mail_b2c_dropped(c, (size_t)n);	/* answers nothing */
			continue;
		}
		if (n > 0) {
			b->tail += (size_t)n;
			moved = STEP_MOVED;
			continue;
		}
		if (n == 0) {
			c->flags |= CF_BACKEND_EOF;
			if (!(c->flags & CF_CLIENT_EOF))
				reason_set(&c->why, "backend closed");
			return STEP_MOVED;
		}
		if (n == BIO_AGAIN || n == BIO_AGAIN_WR) {
			c->flags |= n == BIO_AGAIN ? CF_BE_RD_BLOCKED :
			    CF_BE_RD_WANTS_WR;
			break;
		}
		return proxy_backend_abort(c, why);
	}
	return moved;
}

/*
 * Send the queued control messages.  Returns 0 when none is left,
 * GNUTLS_E_AGAIN (call again when the client fd is writable, before any
 * data), or a fatal GnuTLS code: the end of the connection.
 */
static int
proxy_ctl_flush(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	struct reneg_in in;
	int r;

	while (c->ctl != 0) {
		if (c->tls_send_len > 0)
			return GNUTLS_E_AGAIN;
		if (c->ctl & CTL_ALERT) {
			r = gnutls_alert_send(c->session, GNUTLS_AL_WARNING,
			    (gnutls_alert_description_t)c->alert);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return GNUTLS_E_AGAIN;
			c->ctl &= ~CTL_ALERT;
			if (r < 0)
				return r;
		} else if (c->flags & (CF_CLIENT_EOF | CF_BACKEND_EOF |
		    CF_FLUSH_END)) {
			/* Closing: nobody will answer; do not hold the close. */
			c->ctl &= ~(CTL_HELLO_REQUEST | CTL_KEY_UPDATE);
			reneg_closing(&c->reneg);
		} else if (c->ctl & CTL_HELLO_REQUEST) {
			r = hello_request(c);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return GNUTLS_E_AGAIN;
			c->ctl &= ~CTL_HELLO_REQUEST;
			if (r < 0) {
				reason_set(&c->why, "renegotiation request "
				    "failed: %s", gnutls_strerror(r));
				return r;
			}
			tls_reneg_in(c, &in);
			reneg_sent(&c->reneg, fe, &in, RENEG_SEND_HELLO_REQUEST);
		} else if (c->ctl & CTL_KEY_UPDATE) {
			r = gnutls_session_key_update(c->session, GNUTLS_KU_PEER);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return GNUTLS_E_AGAIN;
			c->ctl &= ~CTL_KEY_UPDATE;
			if (r < 0) {
				reason_set(&c->why, "key update failed: %s",
				    gnutls_strerror(r));
				return r;
			}
			tls_reneg_in(c, &in);
			reneg_sent(&c->reneg, fe, &in, RENEG_SEND_KEY_UPDATE);
		} else
			fatalx("%s: unknown control message 0x%x", __func__,
			    c->ctl);
	}
	return 0;
}

/*
 * Is our close_notify due (once b2c is flushed)?  After the backend's
 * normal end, and at a drain; never after it failed.
 */
static int
proxy_bye_due(const struct conn *c)
{
	if (c->flags & CF_BACKEND_ABORT)
		return 0;
	if ((c->flags & (CF_FLUSH_END | CF_DRAIN)) == (CF_FLUSH_END | CF_DRAIN))
		return 1;
	return (c->flags & (CF_BACKEND_EOF | CF_FLUSH_END)) == CF_BACKEND_EOF;
}

/*
 * Queued control messages (alert, HelloRequest, KeyUpdate), then b2c ->
 * client, then our close_notify after the backend's EOF.  From a
 * HelloRequest until the client's answer, and while the renegotiation
 * handshake runs, only a half-done record send is finished
 * (reneg_data_allowed() says why).
 */
static int
proxy_tls_write(struct conn *c)
{
	struct conn_buf *b = &c->b2c;
	struct reneg_in in;
	int moved = STEP_IDLE, own;
	ssize_t n;
	size_t len;
	int r;

	if (c->flags & CF_CLIENT_GONE)
		return STEP_IDLE;
	tls_reneg_in(c, &in);
	(void)reneg_bytes(&c->reneg, c->wf->fe, &in);	/* conn.c sends it */
	/* A recv that must write goes first (see the header comment). */
	while (!(c->flags & (CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR))) {
		/*
		 * Data and close_notify wait while a HelloRequest is out,
		 * unless the connection is ending: nobody renegotiates then.
		 */
		own = reneg_data_allowed(&c->reneg, c->flags &
		    (CF_CLIENT_EOF | CF_FLUSH_END | CF_BACKEND_ABORT));
		if (c->reneg.state < RENEG_HS_WANTED && c->ctl != 0 &&
		    c->tls_send_len == 0) {
			r = proxy_ctl_flush(c);
			if (r == GNUTLS_E_AGAIN) {
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			if (r < 0)
				return proxy_tls_error(c, r);
			moved = STEP_MOVED;
			continue;
		}
		if (c->tls_send_len > 0 || (own && b->head < b->tail)) {
			len = c->tls_send_len > 0 ? c->tls_send_len : b->tail - b->head;
			n = gnutls_record_send(c->session, b->data + b->head, len);
			if (n > 0) {
				b->head += (size_t)n;
				c->tls_send_len = 0;
				c->bytes_b2c += (uint64_t)n;
				WORKER_COUNT(c, bytes_backend_to_client, (uint64_t)n);
				moved = STEP_MOVED;
				continue;
			}
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				c->tls_send_len = len;
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			return proxy_tls_error(c, (int)n);
		}
		if (own && proxy_bye_due(c) && !(c->flags & CF_BYE_SENT)) {
			r = gnutls_bye(c->session, GNUTLS_SHUT_WR);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			if (r < 0)
				return proxy_tls_error(c, r);
			c->flags |= CF_BYE_SENT;
			moved = STEP_MOVED;
		}
		break;
	}
	return moved;
}

/*
 * Nothing in flight: both buffers empty, no send or control message
 * pending, no renegotiation under way, and no byte moved for
 * PROXY_QUIET_S.  A drain closes such a connection cleanly.
 */
int
proxy_quiet(const struct conn *c, double now)
{
	return c->c2b.head == c->c2b.tail && c->b2c.head == c->b2c.tail &&
	    c->tls_send_len == 0 && c->ctl == 0 &&
	    c->reneg.state == RENEG_IDLE && now - c->t_moved >= PROXY_QUIET_S;
}

/* Has each direction ended the way the connection's end asks for? */
static int
proxy_finished(const struct conn *c)
{
	unsigned all = CF_CLIENT_EOF | CF_BACKEND_EOF | CF_BACKEND_SHUT | CF_BYE_SENT;
	int c2b_done = c->c2b.head == c->c2b.tail &&
	    (c->flags & CF_BACKEND_SHUT);
	int b2c_done = c->b2c.head == c->b2c.tail && c->tls_send_len == 0;

	if (c->reneg.state >= RENEG_HS_WANTED)
		return 0;	/* the handshake owns the session */
	if (c->flags & CF_CLIENT_GONE)
		return c2b_done && (c->flags & CF_BACKEND_EOF);
	if (c->flags & CF_BACKEND_ABORT)
		return b2c_done;
	if (c->flags & CF_FLUSH_END)
		return c2b_done && b2c_done && c->ctl == 0 &&
		    (!(c->flags & CF_DRAIN) || (c->flags & CF_BYE_SENT));
	return (c->flags & all) == all && c->ctl == 0 && c2b_done && b2c_done;
}

/*
 * Pump until nothing moves, then say what the blocked steps wait for
 * (c->wants) and what should happen next.
 */
enum proxy_verdict
proxy_run(struct conn *c)
{
	struct conn_wants *wants = &c->wants;
	int rounds, moved, any = 0, r;

	noise_turn_begin(c);
	for (rounds = 0; rounds < PROXY_ROUNDS; rounds++) {
		moved = 0;
		if ((r = proxy_tls_read(c)) == STEP_CLOSED)
			return PROXY_CLOSE;
		moved |= r;
		moved |= proxy_backend_handshake(c);
		if ((r = proxy_backend_write(c)) == STEP_CLOSED)
			return PROXY_CLOSE;
		moved |= r;
		if ((r = proxy_backend_read(c)) == STEP_CLOSED)
			return PROXY_CLOSE;
		moved |= r;
		if ((r = proxy_tls_write(c)) == STEP_CLOSED)
			return PROXY_CLOSE;
		moved |= r;
		any |= moved;
		if (!moved)
			break;
	}
	/* The side that closed first said why (proxy_client_eof()). */
	if (proxy_finished(c))
		return PROXY_FINISHED;

	memset(wants, 0, sizeof(*wants));
	wants->moved = any;
	/* Still moving after PROXY_ROUNDS: let others run, come back next turn. */
	wants->more = rounds == PROXY_ROUNDS || (noise_turn_spent(c) &&
	    !(c->flags & (CF_TLS_RD_BLOCKED | CF_CLIENT_EOF | CF_FLUSH_END)));
	/* A TLS backend's handshake goes on through a policy end. */
	if ((c->flags & CF_BE_RD_BLOCKED) && (!btls_ready(c) ||
	    !(c->flags & (CF_BACKEND_EOF | CF_FLUSH_END))))
		wants->backend |= EV_READ;
	if (c->flags & (CF_BE_WR_BLOCKED | CF_BE_RD_WANTS_WR))
		wants->backend |= EV_WRITE;

	if (c->reneg.state == RENEG_HS_WANTED && c->tls_send_len == 0)
		return PROXY_RENEG_HS;
	if (c->reneg.state == RENEG_HANDSHAKE) {
		/* The backend side goes on; the pump never touches the session. */
		if ((c->flags & CF_HS_APPDATA) && !c->in_coro &&
		    proxy_buf_room(&c->c2b) > 0)
			return PROXY_HS_APPDATA;
		return PROXY_IN_HANDSHAKE;
	}
	if ((c->flags & CF_TLS_RD_BLOCKED) &&
	    !(c->flags & (CF_CLIENT_EOF | CF_FLUSH_END)) &&
	    (c->c2b.tail < CONN_BUF_SIZE || c->c2b.head > 0))
		wants->client |= EV_READ;
	if (c->flags & (CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR))
		wants->client |= EV_WRITE;
	return PROXY_WAIT;
}

void
proxy_client_ready(struct conn *c, int revents)
{
	if (revents & EV_READ)
		c->flags &= ~CF_TLS_RD_BLOCKED;
	if (revents & EV_WRITE)
		c->flags &= ~(CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR);
}

void
proxy_backend_ready(struct conn *c, int revents)
{
	if (revents & EV_READ)
		c->flags &= ~CF_BE_RD_BLOCKED;
	if (revents & EV_WRITE)
		c->flags &= ~(CF_BE_WR_BLOCKED | CF_BE_RD_WANTS_WR);
}

/* A renegotiation handshake takes the client side over from the pump. */
void
proxy_hs_begin(struct conn *c)
{
	c->flags &= ~(CF_TLS_RD_BLOCKED | CF_TLS_RD_WANTS_WR | CF_TLS_WR_BLOCKED);
}

/*
 * GnuTLS met application data inside the renegotiation handshake: read it
 * into c2b, in order, before the handshake goes on.  When c2b is full the
 * handshake waits for the backend to drain it (proxy_run() says
 * PROXY_HS_APPDATA again).
 */
enum proxy_appdata
proxy_hs_appdata(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	ssize_t n;

	if (proxy_buf_room(b) == 0)
		return PROXY_APPDATA_FULL;
	n = gnutls_record_recv(c->session, b->data + b->tail,
	    CONN_BUF_SIZE - b->tail);
	if (n > 0)
		b->tail += (size_t)n;
	else if (n < 0 && n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED &&
	    gnutls_error_is_fatal((int)n)) {
		reason_set(&c->why, "renegotiation failed: %s",
		    gnutls_strerror((int)n));
		return PROXY_APPDATA_CLOSE;
	}
	c->flags &= ~CF_HS_APPDATA;
	return PROXY_APPDATA_READ;
}

void
proxy_free(struct conn *c)
{
	free(c->c2b.data);	/* one block holds both buffers */
	c->c2b.data = NULL;
	c->b2c.data = NULL;
}
