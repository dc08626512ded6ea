/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_reneg.c -- libFuzzer target for the renegotiation state machine
 * (daemon/worker/reneg.c), driven the way conn.c and proxy.c drive it.
 *
 * An input is a connection's settings (four bytes: TLS 1.3 or 1.2, safe
 * renegotiation, the frontend's rekey-interval, rekey-bytes, on-refusal,
 * on-ignore, client-renegotiation and its limit, rekey-timeout,
 * handshake-timeout), then events, one op byte each (low 4 bits the kind,
 * high 4 an operand) plus at most one more byte:
 *	0 time passes	1 the machine's timer fires (if conn.c armed it)
 *	2 moatctl rekey	3 bytes move (reneg_bytes)
 *	4 the queued HelloRequest or KeyUpdate goes out (only if queued)
 *	5 a ClientHello (TLS 1.3: GnuTLS reports an unexpected packet)
 *	6 GNUTLS_E_UNEXPECTED_PACKET	7 a warning alert
 *	8 the new handshake starts (only if wanted)
 *	9 it ends well	10 it fails (the connection ends)
 *	11 an EOF either way (closing)	12 a new connection, new settings
 *	13 reneg_data_allowed()	14 a new jitter	15 a few ms pass
 * A connection that ends (a verdict of END or FLUSH_END, a fatal
 * unexpected packet, a failed handshake) is followed by a new one; the
 * worker's counters carry on.  conn.c's part is modelled: after each event
 * the timer the machine asked for is armed or stopped (timer_set/timer_s).
 *
 * Invariants asserted after every event (abort() if one fails):
 *  - state and queued are known values; queued != NONE exactly while
 *    QUEUED; the timer asked for is >= 0 and finite; no timer runs while
 *    QUEUED; one runs while WAIT_ANSWER (rekey-timeout) and HANDSHAKE
 *    (handshake-timeout), and while IDLE if rekey-interval is set and the
 *    connection is neither closing nor unsafe (else it never rekeys);
 *  - TLS 1.3 is never renegotiated: no HelloRequest queued or out, never
 *    WAIT_ANSWER, HS_WANTED or HANDSHAKE, no renegotiation counted, and
 *    data always flows; TLS 1.2 never queues a KeyUpdate;
 *  - unsafe is set only for TLS 1.2 without RFC 5746, and such a
 *    connection never gets a HelloRequest;
 *  - hello_out (a HelloRequest unanswered) only on TLS 1.2, set by the
 *    HelloRequest going out and kept through rekey-timeout with on-ignore
 *    = keep, cleared by the answer (ClientHello, refusal, handshake done);
 *    WAIT_ANSWER always has it;
 *  - data to the client waits exactly in WAIT_ANSWER (unless the client
 *    closed), HS_WANTED and HANDSHAKE;
 *  - every return to IDLE but a close's starts the next interval and
 *    byte count then: the timer asked for is rekey-interval less at most
 *    10% jitter (stopped if it is 0), and the byte mark is the count now;
 *  - no rekey within 1 s of the last (RENEG_MIN_GAP_S): the machine queues
 *    only once a second has passed since the last key update or
 *    handshake, whatever asks; rekey-bytes asks only past its count;
 *  - counters never go back, rekeys grows by one per key update sent or
 *    handshake done and by nothing else; each HelloRequest is answered
 *    (completed or refused) at most once; client_count stays within
 *    client-renegotiation-limit;
 *  - verdicts: a ClientHello gets GO_ON (then HS_WANTED, nothing queued)
 *    or REFUSE (state unchanged, the refused ClientHello remembered, and
 *    only when the policy says no); an alert ends the connection only as
 *    a no_renegotiation answer with on-refusal = close; the timer ends it
 *    only past handshake-timeout (END) or, with on-ignore = close, past
 *    rekey-timeout (FLUSH_END); an end always says why.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "conf.h"
#include "fuzz_input.h"
#include "ipc.h"
#include "log.h"
#include "reneg.h"

#define FUZZ_EPS	1e-9

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* One connection as conn.c holds it, plus what the harness remembers. */
struct sim {
	struct frontend		fe;
	struct reneg		r;
	struct reneg_in		in;
	struct ipc_worker_stats	st;	/* the worker's: across connections */
	double			deadline;	/* the armed timer; < 0: none */
	double			last_rekey;	/* as the harness saw it */
	int			hello_out;	/* as the harness expects it */
};

/* conn_rekey_timer_sync(): arm or stop what the machine asked for. */
static void
sim_timer_sync(struct sim *s)
{
	if (!s->r.timer_set)
		return;
	s->r.timer_set = 0;
	if (!(s->r.timer_s >= 0.) || !isfinite(s->r.timer_s))
		abort();
	s->deadline = s->r.timer_s > 0. ? s->in.now + s->r.timer_s : -1.;
}

static void
sim_connect(struct sim *s, struct fuzz_input *in)
{
	static const unsigned intervals[] = { 0, 1, 2, 5, 60, 300, 3600,
	    30 * 24 * 3600 };
	static const uint64_t bytes[] = { 0, 64 * 1024, 100000, 1 << 20 };
	static const unsigned timeouts_ms[] = { 1, 500, 1000, 10000 };
	unsigned b0 = fuzz_byte(in), b1 = fuzz_byte(in), b2 = fuzz_byte(in);
	unsigned b3 = fuzz_byte(in);

	memset(&s->fe, 0, sizeof(s->fe));
	memset(&s->r, 0, sizeof(s->r));
	s->in.tls13 = b0 & 1;
	s->in.safe = (b0 >> 1) & 1;
	s->in.closing = 0;
	s->fe.on_refusal = b0 & 4 ? RENEG_CLOSE : RENEG_KEEP;
	s->fe.on_ignore = b0 & 8 ? RENEG_CLOSE : RENEG_KEEP;
	s->fe.client_renegotiation = (b0 >> 4) & 1;
	s->fe.rekey_interval_s = intervals[b0 >> 5];
	s->fe.rekey_bytes = bytes[b1 & 3];
	s->fe.client_renegotiation_limit = (b1 >> 2) % 5;
	s->fe.rekey_timeout_ms = timeouts_ms[b2 & 3];
	s->fe.handshake_timeout_ms = timeouts_ms[(b2 >> 2) & 3];
	s->in.jitter = b3 / 256.;
	s->in.now += 1.;	/* a connection later */
	reneg_start(&s->r, &s->fe, &s->in);
	s->deadline = -1.;
	s->last_rekey = s->in.now - 1.;
	s->hello_out = 0;
	sim_timer_sync(s);
}

static int
sim_timer_running(const struct sim *s)
{
	return s->deadline >= 0.;
}

/* The invariants of the header comment that hold between any two events. */
static void
sim_check(const struct sim *s)
{
	const struct reneg *r = &s->r;
	int stopped = 0;

	if (r->state > RENEG_HANDSHAKE || r->queued > RENEG_SEND_KEY_UPDATE)
		abort();
	if ((r->state == RENEG_QUEUED) != (r->queued != RENEG_SEND_NONE))
		abort();
	if (r->state == RENEG_QUEUED && sim_timer_running(s))
		abort();
	if ((r->state == RENEG_WAIT_ANSWER || r->state == RENEG_HANDSHAKE) &&
	    !sim_timer_running(s))
		abort();
	if (r->state == RENEG_IDLE && s->fe.rekey_interval_s > 0 &&
	    !s->in.closing && !r->unsafe && !sim_timer_running(s))
		abort();
	if (r->hello_out != s->hello_out)
		abort();
	if (r->state == RENEG_WAIT_ANSWER && !r->hello_out)
		abort();
	if (s->in.tls13 && (r->queued == RENEG_SEND_HELLO_REQUEST ||
	    r->hello_out || r->state == RENEG_WAIT_ANSWER ||
	    r->state == RENEG_HS_WANTED || r->state == RENEG_HANDSHAKE ||
	    r->unsafe || r->by_client || !reneg_data_allowed(r, 0)))
		abort();
	if (!s->in.tls13 && r->queued == RENEG_SEND_KEY_UPDATE)
		abort();
	if (r->unsafe && (s->in.tls13 || s->in.safe ||
	    r->queued == RENEG_SEND_HELLO_REQUEST))
		abort();
	stopped = r->state == RENEG_WAIT_ANSWER ||
	    r->state == RENEG_HS_WANTED || r->state == RENEG_HANDSHAKE;
	if (reneg_data_allowed(r, 0) == stopped)
		abort();
	if (!reneg_data_allowed(r, 1) && r->state != RENEG_HS_WANTED &&
	    r->state != RENEG_HANDSHAKE)
		abort();
	if (r->client_count > s->fe.client_renegotiation_limit)
		abort();
	if (r->last_rekey > s->in.now + FUZZ_EPS)
		abort();
}

/* Across one event: counters, rekeys, the gap before a queued rekey. */
static void
sim_check_step(const struct sim *s, const struct ipc_worker_stats *o,
    const struct reneg *before, int rekeyed)
{
	const struct ipc_worker_stats *n = &s->st;

	if (n->renegotiations_requested < o->renegotiations_requested ||
	    n->renegotiations_completed < o->renegotiations_completed ||
	    n->renegotiations_refused < o->renegotiations_refused ||
	    n->renegotiations_ignored < o->renegotiations_ignored ||
	    n->key_updates < o->key_updates ||
	    n->client_renegotiations_refused <
	    o->client_renegotiations_refused ||
	    n->client_renegotiations_allowed <
	    o->client_renegotiations_allowed)
		abort();
	if (n->renegotiations_completed + n->renegotiations_refused >
	    n->renegotiations_requested)
		abort();
	if (s->r.rekeys != before->rekeys + (rekeyed ? 1u : 0u))
		abort();
	if (s->in.tls13 && (n->renegotiations_requested !=
	    o->renegotiations_requested || n->client_renegotiations_allowed !=
	    o->client_renegotiations_allowed))
		abort();
	if (!s->in.tls13 && n->key_updates != o->key_updates)
		abort();
	/* queued now: at least a second since the last rekey */
	if (before->state != RENEG_QUEUED && s->r.state == RENEG_QUEUED &&
	    s->in.now - s->last_rekey < 1. - FUZZ_EPS)
		abort();
}

/*
 * Back to IDLE (a key update sent, a handshake done, an answer or its
 * timeout that keeps the connection): the interval and the byte count
 * start again now.  Call before sim_timer_sync() takes the timer.
 */
static void
sim_check_idle(const struct sim *s, const struct reneg *before, unsigned op)
{
	const struct reneg *r = &s->r;
	double iv = (double)s->fe.rekey_interval_s;

	if (before->state == RENEG_IDLE || r->state != RENEG_IDLE ||
	    (op & 15) == 11)
		return;		/* not a return to idle, or a close's */
	if (r->mark != s->in.bytes || !r->timer_set)
		abort();
	if (iv == 0. ? r->timer_s != 0. :
	    r->timer_s < 0.9 * iv - FUZZ_EPS || r->timer_s > iv + FUZZ_EPS)
		abort();
}

/* Each verdict is one the event may give (the header comment). */
static void
sim_check_verdict(const struct sim *s, enum reneg_verdict v)
{
	if ((v == RENEG_END || v == RENEG_FLUSH_END) && s->r.why == NULL)
		abort();
}

/*
 * The event of op on s; returns 1 if the connection ended.  *rekeyed says
 * whether it was a key update sent or a renegotiation done.
 */
static int
sim_event(struct sim *s, struct fuzz_input *in, unsigned op, int *rekeyed)
{
	struct reneg *r = &s->r;
	static const double scales[] = { 0.001, 0.01, 0.1, 1., 10., 100. };
	const struct reneg before = *r;
	enum reneg_verdict v;
	enum reneg_send what;
	uint64_t mark;
	unsigned arg = op >> 4;
	int alert, ret;

	switch (op & 15) {
	case 0:
		s->in.now += fuzz_byte(in) * scales[arg % 6];
		break;
	case 1:
		if (!sim_timer_running(s))
			break;
		if (s->deadline > s->in.now)
			s->in.now = s->deadline;
		s->deadline = -1.;
		v = reneg_timer(r, &s->fe, &s->in);
		sim_check_verdict(s, v);
		if (v == RENEG_REFUSE ||
		    (v == RENEG_END && before.state != RENEG_HS_WANTED &&
		    before.state != RENEG_HANDSHAKE) ||
		    (v == RENEG_FLUSH_END &&
		    (before.state != RENEG_WAIT_ANSWER ||
		    s->fe.on_ignore != RENEG_CLOSE)))
			abort();
		if (v != RENEG_GO_ON)
			return 1;
		break;
	case 2:
		(void)reneg_ask(r, &s->fe, &s->in, arg & 1 ? "certificate "
		    "rotation" : "moatctl rekey");
		break;
	case 3:
		s->in.bytes += (uint64_t)fuzz_byte(in) << (2 * arg);
		mark = r->mark;
		if (reneg_bytes(r, &s->fe, &s->in) == 1 &&
		    (s->fe.rekey_bytes == 0 ||
		    s->in.bytes - mark < s->fe.rekey_bytes))
			abort();
		break;
	case 4:
		if (r->state != RENEG_QUEUED)
			break;
		what = r->queued;
		reneg_sent(r, &s->fe, &s->in, what);
		if (what == RENEG_SEND_HELLO_REQUEST) {
			s->hello_out = 1;
			if (reneg_data_allowed(r, 0))
				abort();	/* data waits for the answer */
		} else {
			if (s->in.now - s->last_rekey < 1. - FUZZ_EPS)
				abort();
			s->last_rekey = s->in.now;
			*rekeyed = 1;
		}
		break;
	case 5:
		/* GnuTLS has no renegotiation in TLS 1.3: a stray message */
		if (s->in.tls13)
			return reneg_unexpected(r) < 0;
		v = reneg_client_hello(r, &s->fe, &s->in);
		if (v == RENEG_GO_ON) {
			if (r->state != RENEG_HS_WANTED ||
			    r->queued != RENEG_SEND_NONE || r->hello_out)
				abort();
			/* a renegotiation of the client's own: the policy */
			if (r->by_client && (!s->fe.client_renegotiation ||
			    !s->in.safe || before.state != RENEG_IDLE))
				abort();
			s->hello_out = 0;
		} else if (v == RENEG_REFUSE) {
			if (r->state != before.state || !r->refused_hello ||
			    before.state == RENEG_WAIT_ANSWER ||
			    (s->fe.client_renegotiation && s->in.safe &&
			    before.state == RENEG_IDLE && !before.hello_out &&
			    r->client_count < s->fe.client_renegotiation_limit))
				abort();
		} else
			abort();
		break;
	case 6:
		ret = reneg_unexpected(r);
		if ((ret == 0) != before.refused_hello || r->refused_hello)
			abort();
		if (ret < 0)
			return 1;	/* a fatal error of the connection */
		break;
	case 7:
		alert = arg & 1 ? GNUTLS_A_NO_RENEGOTIATION :
		    (int)fuzz_byte(in);
		v = reneg_alert(r, &s->fe, &s->in, alert);
		sim_check_verdict(s, v);
		if (v != RENEG_GO_ON && (v != RENEG_FLUSH_END ||
		    alert != GNUTLS_A_NO_RENEGOTIATION ||
		    s->fe.on_refusal != RENEG_CLOSE || !before.hello_out))
			abort();
		/* the answer to our HelloRequest: reneg_awaits_answer() */
		if (alert == GNUTLS_A_NO_RENEGOTIATION && before.hello_out &&
		    (before.state == RENEG_WAIT_ANSWER ||
		    before.state == RENEG_IDLE || before.state == RENEG_QUEUED))
			s->hello_out = 0;
		if (v == RENEG_FLUSH_END)
			return 1;
		break;
	case 8:
		if (r->state == RENEG_HS_WANTED)
			reneg_hs_start(r, &s->fe);
		break;
	case 9:
		if (r->state != RENEG_HANDSHAKE)
			break;
		reneg_hs_done(r, &s->fe, &s->in);
		s->hello_out = 0;
		s->last_rekey = s->in.now;
		*rekeyed = 1;
		break;
	case 10:
		if (r->state == RENEG_HANDSHAKE)
			return 1;
		break;
	case 11:
		s->in.closing = 1;
		reneg_closing(r);
		break;
	case 12:
		return 1;
	case 13:
		(void)reneg_data_allowed(r, arg & 1);
		break;
	case 14:
		/* out-of-range jitter too: the machine must clamp it */
		s->in.jitter = arg == 15 ? 1. : arg == 14 ? -0.5 :
		    fuzz_byte(in) / 256.;
		break;
	case 15:
		s->in.now += arg * 0.001;
		break;
	}
	sim_check_idle(s, &before, op);
	sim_timer_sync(s);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sim s;
	struct fuzz_input in = { data, size };
	struct ipc_worker_stats old;
	struct reneg before;
	static int inited;
	unsigned op;
	int ended, rekeyed;

	if (!inited) {
		log_init("fuzz_reneg", LOG_LEVEL_ERROR);
		inited = 1;
	}
	memset(&s, 0, sizeof(s));
	s.in.now = 1000.;
	s.in.peer = "192.0.2.1:4711";
	s.in.stats = &s.st;
	sim_connect(&s, &in);
	sim_check(&s);
	while (in.left > 0) {
		op = fuzz_byte(&in);
		old = s.st;
		before = s.r;
		rekeyed = 0;
		ended = sim_event(&s, &in, op, &rekeyed);
		sim_check_step(&s, &old, &before, rekeyed);
		if (ended)
			sim_connect(&s, &in);
		sim_check(&s);
	}
	return 0;
}
