/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reneg.c -- renegotiation and key update of established connections, as
 * gnutls_rehandshake(3) describes them, and the policy for renegotiations
 * the client starts.  A pure state machine (reneg.h); the pump (proxy.c)
 * and conn.c do the sending and arm the timer it asks for.
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
 * No data to the client while a HelloRequest is unanswered
 * (reneg_data_allowed()): a GnuTLS 3.7 client that gets application data
 * after its ClientHello gives up that handshake (gnutls_handshake() returns
 * GNUTLS_E_GOT_APPLICATION_DATA and _gnutls_abort_handshake() resets it),
 * and its next gnutls_handshake() sends a second ClientHello with a new
 * random -- while we sign for the first one, so the client rejects our
 * ServerKeyExchange.  So from the HelloRequest until the client answers
 * (new handshake done, refusal, or rekey-timeout) backend data waits in
 * b2c; the client's data still flows to the backend.  Unless the client
 * already closed its side: it will not renegotiate any more, and the rest
 * must reach it.  TLS 1.3 KeyUpdate needs no such pause.
 *
 * A HelloRequest stays outstanding after rekey-timeout (hello_out): with
 * on-ignore = keep the connection goes on, but a ClientHello that comes
 * later (OpenSSL clients renegotiate on their next read, which for a
 * pooled HTTP connection may be minutes later) is the answer to it, not a
 * renegotiation of the client's own, and is never refused as one.
 *
 * Pacing: each rekey-interval wait is drawn between 90% and 100% of the
 * interval, so connections accepted together do not rekey together for
 * ever; and no connection rekeys again within RENEG_MIN_GAP_S of its last
 * rekey, whatever asks (rekey-bytes on a fast stream, a burst of `moatctl
 * rekey`): a request inside the gap waits for its end.  GnuTLS peers end a
 * session that gets more than 8 key updates in a second
 * (lib/tls13/key_update.c).  How many TLS 1.2 renegotiations a worker has
 * in flight at once is pace.c's (rekey-concurrency).
 */
#include "config.h"

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "reneg.h"

#define RENEG_CLIENT_WINDOW_S	60.0	/* client-renegotiation-limit's minute */
#define RENEG_MIN_GAP_S		1.0	/* at most one rekey a second */
#define RENEG_JITTER		0.1	/* intervals spread over their last 10% */

static const char *
reneg_policy_name(enum reneg_on on)
{
	return on == RENEG_CLOSE ? "close" : "keep";
}

static void
reneg_timer_want(struct reneg *r, double seconds)
{
	r->timer_set = 1;
	r->timer_s = seconds > 0. ? seconds : 0.;
}

/* Nothing under way: the next interval and byte count start now. */
static void
reneg_idle(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	double j = in->jitter >= 0. && in->jitter < 1. ? in->jitter : 0.;

	r->state = RENEG_IDLE;
	r->queued = RENEG_SEND_NONE;
	r->by_client = 0;
	r->mark = in->bytes;
	reneg_timer_want(r, (double)fe->rekey_interval_s *
	    (1. - RENEG_JITTER * j));
}

/* Proxying started: the connection may now be renegotiated. */
void
reneg_start(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	r->last_rekey = in->now - RENEG_MIN_GAP_S;	/* the first may go at once */
	reneg_idle(r, fe, in);
}

/*
 * A trigger asks the client to renegotiate (TLS 1.2) or update its keys
 * (TLS 1.3).  Returns 1 if a HelloRequest or KeyUpdate is now queued
 * (r->queued) or will be once RENEG_MIN_GAP_S since the last one has
 * passed (the timer, then reneg_timer()), 0 if this connection cannot be
 * asked now (closing, already renegotiating, or no safe renegotiation).
 */
int
reneg_ask(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in, const char *why)
{
	double wait = r->last_rekey + RENEG_MIN_GAP_S - in->now;

	if (r->state != RENEG_IDLE || r->unsafe || in->closing)
		return 0;
	if (wait > 0. && (in->tls13 || in->safe)) {
		/* Too soon after the last one: ask when the gap has passed. */
		reneg_timer_want(r, wait);
		log_debug("reneg: %s: %s in %.0f ms (at most one a second)",
		    in->peer, why, wait * 1000.);
		return 1;
	}
	if (in->tls13) {
		r->queued = RENEG_SEND_KEY_UPDATE;
	} else if (!in->safe) {
		/* Said once; the connection is never asked again. */
		r->unsafe = 1;
		reneg_timer_want(r, 0.);
		log_info("reneg: %s: not renegotiating (%s): the client did not "
		    "negotiate safe renegotiation (RFC 5746)", in->peer, why);
		return 0;
	} else {
		r->queued = RENEG_SEND_HELLO_REQUEST;
	}
	r->state = RENEG_QUEUED;
	reneg_timer_want(r, 0.);
	log_debug("reneg: %s: %s (%s)", in->peer,
	    r->queued == RENEG_SEND_KEY_UPDATE ? "key update" : "renegotiation",
	    why);
	return 1;
}

/* Bytes moved: rekey-bytes may ask.  Returns what reneg_ask() does. */
int
reneg_bytes(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	if (fe->rekey_bytes == 0 || r->state != RENEG_IDLE ||
	    in->bytes - r->mark < fe->rekey_bytes ||
	    in->now - r->last_rekey < RENEG_MIN_GAP_S)
		return 0;
	return reneg_ask(r, fe, in, "rekey-bytes");
}

/* The queued HelloRequest or KeyUpdate went out. */
void
reneg_sent(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in, enum reneg_send what)
{
	r->queued = RENEG_SEND_NONE;
	switch (what) {
	case RENEG_SEND_HELLO_REQUEST:
		in->stats->renegotiations_requested++;
		r->state = RENEG_WAIT_ANSWER;
		r->hello_out = 1;
		reneg_timer_want(r, fe->rekey_timeout_ms / 1000.);
		break;
	case RENEG_SEND_KEY_UPDATE:
		in->stats->key_updates++;
		r->rekeys++;
		r->last_rekey = in->now;
		reneg_idle(r, fe, in);
		break;
	case RENEG_SEND_NONE:
		break;
	}
}

/* Closing: nobody will answer a queued request; do not hold the close. */
void
reneg_closing(struct reneg *r)
{
	if (r->state != RENEG_QUEUED)
		return;
	r->queued = RENEG_SEND_NONE;
	r->state = RENEG_IDLE;
	reneg_timer_want(r, 0.);
}

/*
 * Whether our HelloRequest waits for its answer: in time (RENEG_WAIT_ANSWER)
 * or late (hello_out, after rekey-timeout, while no new handshake is under
 * way).  A ClientHello then is the client taking it, a no_renegotiation
 * alert the client refusing it; neither is noise the client sent unasked.
 */
int
reneg_awaits_answer(const struct reneg *r)
{
	return r->state == RENEG_WAIT_ANSWER || (r->hello_out &&
	    (r->state == RENEG_IDLE || r->state == RENEG_QUEUED));
}

/*
 * GNUTLS_E_REHANDSHAKE: the client's ClientHello, the answer to our
 * HelloRequest (in time, or late: hello_out) or a renegotiation of its
 * own, which the policy decides.  RENEG_GO_ON: the new handshake is wanted
 * (RENEG_HS_WANTED; a request still queued is dropped: the caller unqueues
 * it); RENEG_REFUSE: send a no_renegotiation warning alert.
 */
enum reneg_verdict
reneg_client_hello(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	const char *why = NULL;
	unsigned held;

	if (reneg_awaits_answer(r)) {
		/* The client took our HelloRequest. */
		if (r->state != RENEG_WAIT_ANSWER)
			log_info("reneg: %s: the client answers the "
			    "renegotiation request it ignored", in->peer);
		reneg_timer_want(r, 0.);
		r->state = RENEG_HS_WANTED;
		r->queued = RENEG_SEND_NONE;
		r->hello_out = 0;
		r->by_client = 0;
		return RENEG_GO_ON;
	}
	if (!fe->client_renegotiation)
		why = "client-renegotiation = refuse";
	else if (r->state != RENEG_IDLE)
		why = "a renegotiation is already under way";
	else if (!in->safe)
		why = "no safe renegotiation (RFC 5746)";
	else {
		if (in->now - r->client_window >= RENEG_CLIENT_WINDOW_S) {
			r->client_window = in->now;
			r->client_count = 0;
		}
		if (r->client_count >= fe->client_renegotiation_limit)
			why = "over client-renegotiation-limit";
	}
	if (why != NULL) {
		in->stats->client_renegotiations_refused++;
		/* A client can ask again at once: the log line is limited. */
		if (!log_limit_pass(in->refusal_log, in->now,
		    RENEG_REFUSAL_LOG_PER_S, &held))
			;
		else if (held > 0)
			log_info("reneg: %s: client-initiated renegotiation "
			    "refused: %s (and %u more not logged)", in->peer,
			    why, held);
		else
			log_info("reneg: %s: client-initiated renegotiation "
			    "refused: %s", in->peer, why);
		r->refused_hello = 1;
		return RENEG_REFUSE;
	}
	r->client_count++;
	in->stats->client_renegotiations_allowed++;
	log_info("reneg: %s: client-initiated renegotiation allowed (%u of %u "
	    "this minute)", in->peer, r->client_count,
	    fe->client_renegotiation_limit);
	reneg_timer_want(r, 0.);
	r->state = RENEG_HS_WANTED;
	r->by_client = 1;
	return RENEG_GO_ON;
}

/*
 * GNUTLS_E_UNEXPECTED_PACKET from the record layer.  GnuTLS parked the
 * ClientHello we refused in its record buffer; the next read discards it
 * with this code (lib/buffers.c _gnutls_record_buffer_get()).  Expected
 * once per refusal: 0; otherwise -1, a fatal error of the connection.
 */
int
reneg_unexpected(struct reneg *r)
{
	if (!r->refused_hello)
		return -1;
	r->refused_hello = 0;
	return 0;
}

/* GNUTLS_E_WARNING_ALERT_RECEIVED with this alert. */
enum reneg_verdict
reneg_alert(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in, int alert)
{
	if (alert != GNUTLS_A_NO_RENEGOTIATION || !reneg_awaits_answer(r)) {
		log_debug("reneg: %s: warning alert %s", in->peer,
		    gnutls_alert_get_name((gnutls_alert_description_t)alert));
		return RENEG_GO_ON;
	}
	r->hello_out = 0;
	in->stats->renegotiations_refused++;
	log_info("reneg: %s: client refused renegotiation (on-refusal %s)",
	    in->peer, reneg_policy_name(fe->on_refusal));
	if (fe->on_refusal == RENEG_CLOSE) {
		reneg_timer_want(r, 0.);
		r->why = "client refused renegotiation";
		return RENEG_FLUSH_END;
	}
	/* a late refusal while a new request is queued: that one goes on */
	if (r->state != RENEG_QUEUED)
		reneg_idle(r, fe, in);
	return RENEG_GO_ON;
}

/* The machine's timer fired: an interval, an answer or a handshake deadline. */
enum reneg_verdict
reneg_timer(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	r->timer_set = 0;
	r->timer_s = 0.;	/* a one-shot: it is not running any more */
	switch (r->state) {
	case RENEG_IDLE:
		(void)reneg_ask(r, fe, in, "rekey-interval");
		return RENEG_GO_ON;
	case RENEG_WAIT_ANSWER:
		in->stats->renegotiations_ignored++;
		log_info("reneg: %s: client ignored the renegotiation request "
		    "for %u ms (on-ignore %s)", in->peer, fe->rekey_timeout_ms,
		    reneg_policy_name(fe->on_ignore));
		if (fe->on_ignore == RENEG_CLOSE) {
			r->why = "client ignored renegotiation request";
			return RENEG_FLUSH_END;
		}
		reneg_idle(r, fe, in);
		return RENEG_GO_ON;
	case RENEG_HS_WANTED:
	case RENEG_HANDSHAKE:
		r->why = "renegotiation handshake timeout";
		return RENEG_END;
	case RENEG_QUEUED:
		break;	/* the timer is not armed while queued */
	}
	return RENEG_GO_ON;
}

/* The new handshake begins; it has handshake-timeout to finish. */
void
reneg_hs_start(struct reneg *r, const struct frontend *fe)
{
	r->state = RENEG_HANDSHAKE;
	reneg_timer_want(r, fe->handshake_timeout_ms / 1000.);
}

/* The new handshake finished. */
void
reneg_hs_done(struct reneg *r, const struct frontend *fe,
    const struct reneg_in *in)
{
	if (!r->by_client)
		in->stats->renegotiations_completed++;
	r->rekeys++;
	r->hello_out = 0;
	r->last_rekey = in->now;
	reneg_idle(r, fe, in);
}

/*
 * May application data (or close_notify) go to the client now?  Not while
 * a HelloRequest is unanswered, unless the client closed its side (top).
 */
int
reneg_data_allowed(const struct reneg *r, int client_eof)
{
	return r->state == RENEG_IDLE || r->state == RENEG_QUEUED ||
	    (r->state == RENEG_WAIT_ANSWER && client_eof);
}
