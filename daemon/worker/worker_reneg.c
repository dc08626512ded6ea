/*
 * worker_reneg.c -- renegotiation and key update of established
 * connections, as gnutls_rehandshake(3) describes them, and the policy for
 * renegotiations the client starts.
 *
 * Server-initiated (triggers: rekey-interval, rekey-bytes, `moatctl rekey`,
 * a certificate rotation with rekey-on-cert-change):
 * - TLS 1.3: gnutls_session_key_update(GNUTLS_KU_PEER), a KeyUpdate with
 *   update_requested; the client answers inside the record layer, there is
 *   nothing to wait for and no handshake (key_updates).
 * - TLS 1.2, only when RFC 5746 safe renegotiation was negotiated:
 *   gnutls_rehandshake() sends a HelloRequest (renegotiations_requested).
 *   The pump goes on calling gnutls_record_recv() and forwarding whatever
 *   data comes, until one of three answers:
 *   . GNUTLS_E_REHANDSHAKE, the client's ClientHello: the new handshake
 *     runs on a coroutine exactly like the first one, its signature made by
 *     keyd without stalling the loop (renegotiations_completed);
 *   . GNUTLS_E_WARNING_ALERT_RECEIVED with GNUTLS_A_NO_RENEGOTIATION, the
 *     client refused (renegotiations_refused), then on-refusal keep|close;
 *   . nothing within rekey-timeout, the client ignored it
 *     (renegotiations_ignored), then on-ignore keep|close.
 * Client-initiated (GNUTLS_E_REHANDSHAKE when we asked for nothing):
 * refused with a no_renegotiation warning alert
 * (client_renegotiations_refused) unless client-renegotiation = allow, the
 * connection negotiated safe renegotiation, and fewer than
 * client-renegotiation-limit were allowed in the current minute
 * (client_renegotiations_allowed).
 *
 * No data to the client while a HelloRequest is unanswered: a GnuTLS 3.7
 * client that gets application data after its ClientHello gives up that
 * handshake (gnutls_handshake() returns GNUTLS_E_GOT_APPLICATION_DATA and
 * _gnutls_abort_handshake() resets it), and its next gnutls_handshake()
 * sends a second ClientHello with a new random -- while we sign for the
 * first one, so the client rejects our ServerKeyExchange.  So from the
 * HelloRequest until the client answers (new handshake done, refusal, or
 * rekey-timeout) backend data waits in b2c; the client's data still flows
 * to the backend.  TLS 1.3 KeyUpdate needs no such pause.
 *
 * No byte lost, duplicated or reordered:
 * - HelloRequest, KeyUpdate and alerts are control messages queued in
 *   c->ctl and sent by reneg_ctl_flush() from the pump, never while a
 *   record send is half done, and -- after GNUTLS_E_AGAIN -- called again
 *   before any data record: GnuTLS keeps one send buffer, and a
 *   record_send() issued over an unfinished control message would only
 *   flush that message and report the data as sent.
 * - A renegotiation handshake starts only once no record send is pending
 *   (RENEG_HS_WANTED); while it runs the pump leaves the TLS side alone:
 *   backend data waits in b2c (back-pressure on the backend), c2b keeps
 *   draining to the backend.  Data the client sent before its ClientHello
 *   was read by the pump in order; data GnuTLS meets inside the handshake
 *   comes back as GNUTLS_E_GOT_APPLICATION_DATA and is read into c2b before
 *   the handshake goes on (reneg_hs_appdata()).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "conn.h"
#include "worker_int.h"
#include "worker_keyop.h"

static const char *
reneg_policy_name(enum reneg_on on)
{
	return on == RENEG_CLOSE ? "close" : "keep";
}

static void
reneg_timer_arm(struct conn *c, double seconds)
{
	ev_timer_stop(c->w->loop, &c->rekey_timer);
	if (seconds <= 0.)
		return;
	ev_timer_set(&c->rekey_timer, seconds, 0.);
	ev_timer_start(c->w->loop, &c->rekey_timer);
}

/* Nothing under way: the next interval and byte count start now. */
static void
reneg_idle(struct conn *c)
{
	c->reneg = RENEG_IDLE;
	c->reneg_by_client = 0;
	c->rekey_mark = c->bytes_c2b + c->bytes_b2c;
	reneg_timer_arm(c, (double)c->wf->fe->rekey_interval_s);
}

static void
reneg_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, rekey_timer);
	const struct frontend *fe = c->wf->fe;

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	switch (c->reneg) {
	case RENEG_IDLE:
		(void)reneg_request(c, "rekey-interval");
		break;
	case RENEG_WAIT_ANSWER:
		c->w->stats.renegotiations_ignored++;
		log_info("reneg: %s: client ignored the renegotiation request "
		    "for %u ms (on-ignore %s)", c->peer, fe->rekey_timeout_ms,
		    reneg_policy_name(fe->on_ignore));
		if (fe->on_ignore == RENEG_CLOSE) {
			worker_conn_close(c, "client ignored renegotiation request");
			return;
		}
		reneg_idle(c);
		break;
	case RENEG_HS_WANTED:
	case RENEG_HANDSHAKE:
		worker_conn_close(c, "renegotiation handshake timeout");
		break;
	case RENEG_QUEUED:
		break;	/* the timer is not armed while queued */
	}
}

void
reneg_conn_init(struct conn *c)
{
	ev_init(&c->rekey_timer, reneg_timer_cb);
}

/* Proxying started: the connection may now be renegotiated. */
void
reneg_conn_start(struct conn *c)
{
	reneg_idle(c);
}

void
reneg_conn_stop(struct conn *c)
{
	ev_timer_stop(c->w->loop, &c->rekey_timer);
}

/*
 * Ask the client to renegotiate (TLS 1.2) or update its keys (TLS 1.3).
 * Returns 1 if asked, 0 if this connection cannot be now (still in its
 * first handshake, closing, already renegotiating, or no safe
 * renegotiation).  The pump sends the request; c stays valid.
 */
int
reneg_request(struct conn *c, const char *why)
{
	if (c->state != CONN_PROXY || c->reneg != RENEG_IDLE || c->in_coro ||
	    (c->flags & (CF_CLIENT_EOF | CF_BACKEND_EOF | CF_BYE_SENT |
	    CF_RENEG_UNSAFE)))
		return 0;
	if (gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3) {
		c->ctl |= CTL_KEY_UPDATE;
	} else if (!gnutls_safe_renegotiation_status(c->session)) {
		/* Said once; the connection is never asked again. */
		c->flags |= CF_RENEG_UNSAFE;
		ev_timer_stop(c->w->loop, &c->rekey_timer);
		log_info("reneg: %s: not renegotiating (%s): the client did not "
		    "negotiate safe renegotiation (RFC 5746)", c->peer, why);
		return 0;
	} else
		c->ctl |= CTL_HELLO_REQUEST;
	c->reneg = RENEG_QUEUED;
	ev_timer_stop(c->w->loop, &c->rekey_timer);
	log_debug("reneg: %s: %s (%s)", c->peer,
	    (c->ctl & CTL_KEY_UPDATE) ? "key update" : "renegotiation", why);
	/* Let the pump send it from the loop's top level. */
	ev_feed_event(c->w->loop, &c->cio, EV_CUSTOM);
	return 1;
}

/* Every live connection of one frontend (or of all): `moatctl rekey`. */
unsigned
reneg_frontend(struct worker *w, const struct worker_frontend *only,
    const char *why)
{
	struct conn *c;
	unsigned n = 0;

	for (c = w->conns; c != NULL; c = c->next)
		if (only == NULL || c->wf == only)
			n += (unsigned)reneg_request(c, why);
	log_info("reneg: %s: %u connection(s) asked to renegotiate", why, n);
	return n;
}

void
reneg_bytes_check(struct conn *c)
{
	uint64_t limit = c->wf->fe->rekey_bytes;

	if (limit > 0 && c->reneg == RENEG_IDLE &&
	    c->bytes_c2b + c->bytes_b2c - c->rekey_mark >= limit)
		(void)reneg_request(c, "rekey-bytes");
}

/*
 * Send the queued control messages.  Returns 0 when none is left,
 * GNUTLS_E_AGAIN (call again when the client fd is writable, before any
 * data), or a fatal GnuTLS code: the end of the connection.
 */
int
reneg_ctl_flush(struct conn *c)
{
	struct worker *w = c->w;
	const struct frontend *fe = c->wf->fe;
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
		} else if (c->flags & (CF_CLIENT_EOF | CF_BACKEND_EOF)) {
			/* Closing: nobody will answer; do not hold the close. */
			c->ctl &= ~(CTL_HELLO_REQUEST | CTL_KEY_UPDATE);
			c->reneg = RENEG_IDLE;
			ev_timer_stop(w->loop, &c->rekey_timer);
		} else if (c->ctl & CTL_HELLO_REQUEST) {
			r = gnutls_rehandshake(c->session);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return GNUTLS_E_AGAIN;
			c->ctl &= ~CTL_HELLO_REQUEST;
			if (r < 0) {
				conn_why(c, "renegotiation request failed: %s",
				    gnutls_strerror(r));
				return r;
			}
			w->stats.renegotiations_requested++;
			c->reneg = RENEG_WAIT_ANSWER;
			reneg_timer_arm(c, fe->rekey_timeout_ms / 1000.);
		} else if (c->ctl & CTL_KEY_UPDATE) {
			r = gnutls_session_key_update(c->session, GNUTLS_KU_PEER);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return GNUTLS_E_AGAIN;
			c->ctl &= ~CTL_KEY_UPDATE;
			if (r < 0) {
				conn_why(c, "key update failed: %s",
				    gnutls_strerror(r));
				return r;
			}
			w->stats.key_updates++;
			c->rekeys++;
			reneg_idle(c);
		} else
			fatalx("%s: unknown control message 0x%x", __func__,
			    c->ctl);
	}
	return 0;
}

/* The client started a renegotiation: the policy decides. */
static void
reneg_client_hello(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	struct worker *w = c->w;
	ev_tstamp now = ev_now(w->loop);
	const char *why = NULL;

	if (!fe->client_renegotiation)
		why = "client-renegotiation = refuse";
	else if (c->reneg != RENEG_IDLE)
		why = "a renegotiation is already under way";
	else if (!gnutls_safe_renegotiation_status(c->session))
		why = "no safe renegotiation (RFC 5746)";
	else {
		if (now - c->client_reneg_window >= 60.) {
			c->client_reneg_window = now;
			c->client_reneg_count = 0;
		}
		if (c->client_reneg_count >= fe->client_renegotiation_limit)
			why = "over client-renegotiation-limit";
	}
	if (why != NULL) {
		w->stats.client_renegotiations_refused++;
		log_info("reneg: %s: client-initiated renegotiation refused: %s",
		    c->peer, why);
		c->alert = GNUTLS_A_NO_RENEGOTIATION;
		c->ctl |= CTL_ALERT;
		c->flags |= CF_RENEG_REFUSED;
		return;
	}
	c->client_reneg_count++;
	w->stats.client_renegotiations_allowed++;
	log_info("reneg: %s: client-initiated renegotiation allowed (%u of %u "
	    "this minute)", c->peer, c->client_reneg_count,
	    fe->client_renegotiation_limit);
	ev_timer_stop(w->loop, &c->rekey_timer);
	c->reneg = RENEG_HS_WANTED;
	c->reneg_by_client = 1;
}

/*
 * A record-layer event that is not data, from gnutls_record_recv() in the
 * pump.  Returns 0 to go on, 1 if the connection was closed here (do not
 * touch it), or a negative GnuTLS code to end it (the caller logs it).
 */
int
reneg_record_event(struct conn *c, int ret)
{
	const struct frontend *fe = c->wf->fe;
	gnutls_alert_description_t a;

	switch (ret) {
	case GNUTLS_E_REHANDSHAKE:
		if (c->reneg == RENEG_WAIT_ANSWER) {
			/* The client took our HelloRequest. */
			ev_timer_stop(c->w->loop, &c->rekey_timer);
			c->reneg = RENEG_HS_WANTED;
			c->reneg_by_client = 0;
			return 0;
		}
		reneg_client_hello(c);
		return 0;
	case GNUTLS_E_UNEXPECTED_PACKET:
		/*
		 * GnuTLS parked the refused ClientHello in its record buffer;
		 * the next read discards it with this code (lib/buffers.c
		 * _gnutls_record_buffer_get()).  Expected once per refusal.
		 */
		if (c->flags & CF_RENEG_REFUSED) {
			c->flags &= ~CF_RENEG_REFUSED;
			return 0;
		}
		return ret;
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		a = gnutls_alert_get(c->session);
		if (a != GNUTLS_A_NO_RENEGOTIATION || c->reneg != RENEG_WAIT_ANSWER) {
			log_debug("reneg: %s: warning alert %s", c->peer,
			    gnutls_alert_get_name(a));
			return 0;
		}
		c->w->stats.renegotiations_refused++;
		ev_timer_stop(c->w->loop, &c->rekey_timer);
		log_info("reneg: %s: client refused renegotiation (on-refusal %s)",
		    c->peer, reneg_policy_name(fe->on_refusal));
		if (fe->on_refusal == RENEG_CLOSE) {
			worker_conn_close(c, "client refused renegotiation");
			return 1;
		}
		reneg_idle(c);
		return 0;
	default:
		return ret;
	}
}

/*
 * May application data (or close_notify) go to the client now?  Not while
 * a HelloRequest is unanswered -- unless the client already closed its
 * side: it will not renegotiate any more, and the rest must reach it.
 */
int
reneg_data_allowed(const struct conn *c)
{
	return c->reneg == RENEG_IDLE || c->reneg == RENEG_QUEUED ||
	    (c->reneg == RENEG_WAIT_ANSWER && (c->flags & CF_CLIENT_EOF));
}

int
reneg_hs_wanted(const struct conn *c)
{
	return c->reneg == RENEG_HS_WANTED && c->tls_send_len == 0;
}

/*
 * The client's ClientHello is in and no record send is pending: run the
 * new handshake on the frontend's current credentials.  The caller must
 * not touch c afterwards.
 */
void
reneg_hs_start(struct conn *c)
{
	int r;

	c->reneg = RENEG_HANDSHAKE;
	c->flags &= ~(CF_TLS_RD_BLOCKED | CF_TLS_RD_WANTS_WR | CF_TLS_WR_BLOCKED);
	conn_client_watch(c, 0);
	if ((r = tls_session_cred_switch(c)) < 0) {
		worker_conn_close(c, "renegotiation failed: %s", gnutls_strerror(r));
		return;
	}
	keyop_transcript_reset(&c->tr);
	reneg_timer_arm(c, c->wf->fe->handshake_timeout_ms / 1000.);
	tls_handshake_step(c);
}

/*
 * GnuTLS met application data inside the renegotiation handshake: read it
 * into c2b, in order, then go on with the handshake.  When c2b is full the
 * handshake waits for the backend to drain it (proxy_run() calls again).
 * The caller must not touch c afterwards.
 */
void
reneg_hs_appdata(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	ssize_t n;

	if (conn_buf_room(b) == 0) {
		conn_client_watch(c, 0);
		return;
	}
	n = gnutls_record_recv(c->session, b->data + b->tail,
	    CONN_BUF_SIZE - b->tail);
	if (n > 0)
		b->tail += (size_t)n;
	else if (n < 0 && n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED &&
	    gnutls_error_is_fatal((int)n)) {
		worker_conn_close(c, "renegotiation failed: %s",
		    gnutls_strerror((int)n));
		return;
	}
	c->flags &= ~CF_HS_APPDATA;
	tls_handshake_step(c);
}

/*
 * What gnutls_handshake() said during a renegotiation (worker_tls.c calls
 * this on the loop's stack).  The caller must not touch c afterwards.
 */
void
reneg_hs_done(struct conn *c, int r)
{
	struct worker *w = c->w;

	switch (r) {
	case 0:
		if (!c->reneg_by_client)
			w->stats.renegotiations_completed++;
		c->rekeys++;
		tls_cred_unref(c->cred_old);
		c->cred_old = NULL;
		keyop_transcript_reset(&c->tr);
		c->tr.state = KEYOP_TR_DONE;
		log_info("reneg: %s: renegotiated (%s, %s), certificate "
		    "generation %u", c->peer,
		    c->reneg_by_client ? "client-initiated" : "server-initiated",
		    tls_cipher_name(c), c->cred->generation);
		reneg_idle(c);
		proxy_run(c);
		return;
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_INTERRUPTED:
		conn_client_watch(c, gnutls_record_get_direction(c->session) ?
		    EV_WRITE : EV_READ);
		return;
	case GNUTLS_E_GOT_APPLICATION_DATA:
		c->flags |= CF_HS_APPDATA;
		proxy_run(c);
		return;
	default:
		if (!gnutls_error_is_fatal(r)) {
			conn_client_watch(c, EV_READ);
			ev_feed_event(w->loop, &c->cio, EV_READ);
			return;
		}
		(void)gnutls_alert_send_appropriate(c->session, r);
		if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
			worker_conn_close(c, "renegotiation failed: client sent "
			    "alert %s", gnutls_alert_get_name(
			    gnutls_alert_get(c->session)));
		else
			worker_conn_close(c, "renegotiation failed: %s",
			    gnutls_strerror(r));
		return;
	}
}
