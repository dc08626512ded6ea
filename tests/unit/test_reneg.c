/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_reneg.c -- the renegotiation state machine (daemon/worker/reneg.c)
 * driven by the events a connection feeds it: a trigger, the HelloRequest
 * sent, the client's ClientHello, a no_renegotiation alert, its timer, the
 * new handshake's start and end, client-initiated renegotiations, closing.
 * Every transition, counter, timer request and verdict is checked.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "reneg.h"

struct fixture {
	struct frontend		fe;
	struct reneg		r;
	struct ipc_worker_stats	st;
	struct reneg_in		in;
};

static int
setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.fe.rekey_interval_s = 300;
	f.fe.rekey_timeout_ms = 10000;
	f.fe.handshake_timeout_ms = 30000;
	f.fe.on_refusal = RENEG_KEEP;
	f.fe.on_ignore = RENEG_KEEP;
	f.fe.client_renegotiation = 0;
	f.fe.client_renegotiation_limit = 2;
	f.in.now = 1000.0;
	f.in.bytes = 0;
	f.in.tls13 = 0;
	f.in.safe = 1;
	f.in.peer = "192.0.2.1:4711";
	f.in.stats = &f.st;
	*state = &f;
	return 0;
}

/* The timer the machine asked for since the last look: -1 if none. */
static double
timer_taken(struct reneg *r)
{
	double t;

	if (!r->timer_set)
		return -1.;
	t = r->timer_s;
	r->timer_set = 0;
	return t;
}

static void
started(struct fixture *f)
{
	reneg_start(&f->r, &f->fe, &f->in);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_true(timer_taken(&f->r) == 300.);
}

/* A HelloRequest queued and sent: the machine waits for the answer. */
static void
requested(struct fixture *f)
{
	uint64_t before = f->st.renegotiations_requested;

	f->in.now += 2.;	/* past the one-a-second floor (reneg.c) */
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	assert_int_equal(f->r.queued, RENEG_SEND_HELLO_REQUEST);
	assert_true(timer_taken(&f->r) == 0.);
	/* data still flows while it is only queued */
	assert_true(reneg_data_allowed(&f->r, 0));
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(f->r.state, RENEG_WAIT_ANSWER);
	assert_int_equal(f->r.queued, RENEG_SEND_NONE);
	assert_int_equal(f->st.renegotiations_requested, before + 1);
	assert_true(timer_taken(&f->r) == 10.);
}

static void
test_tls12_accepted(void **state)
{
	struct fixture *f = *state;

	started(f);
	requested(f);
	/* no data to the client while the HelloRequest is unanswered ... */
	assert_false(reneg_data_allowed(&f->r, 0));
	/* ... unless the client closed its side */
	assert_true(reneg_data_allowed(&f->r, 1));

	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_HS_WANTED);
	assert_int_equal(f->r.by_client, 0);
	assert_true(timer_taken(&f->r) == 0.);
	assert_false(reneg_data_allowed(&f->r, 0));

	reneg_hs_start(&f->r, &f->fe);
	assert_int_equal(f->r.state, RENEG_HANDSHAKE);
	assert_true(timer_taken(&f->r) == 30.);

	f->in.bytes = 5000;
	reneg_hs_done(&f->r, &f->fe, &f->in);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.renegotiations_completed, 1);
	assert_int_equal(f->r.rekeys, 1);
	assert_int_equal(f->r.mark, 5000);
	assert_true(timer_taken(&f->r) == 300.);
	assert_true(reneg_data_allowed(&f->r, 0));
	/* nothing else was counted */
	assert_int_equal(f->st.renegotiations_refused, 0);
	assert_int_equal(f->st.renegotiations_ignored, 0);
	assert_int_equal(f->st.client_renegotiations_allowed, 0);
}

static void
test_refused_keep_and_close(void **state)
{
	struct fixture *f = *state;

	started(f);
	requested(f);
	/* another warning alert is not an answer */
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_USER_CANCELED), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_WAIT_ANSWER);
	assert_int_equal(f->st.renegotiations_refused, 0);
	/* no_renegotiation, on-refusal keep: back to idle */
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.renegotiations_refused, 1);
	assert_true(timer_taken(&f->r) == 300.);

	/* a no_renegotiation nobody asked for counts nothing */
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_GO_ON);
	assert_int_equal(f->st.renegotiations_refused, 1);

	/* on-refusal close: the connection ends after a flush, says why */
	f->fe.on_refusal = RENEG_CLOSE;
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_FLUSH_END);
	assert_string_equal(f->r.why, "client refused renegotiation");
	assert_int_equal(f->st.renegotiations_refused, 2);
	assert_int_equal(f->st.renegotiations_requested, 2);
}

static void
test_ignored_keep_and_close(void **state)
{
	struct fixture *f = *state;

	started(f);
	requested(f);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.renegotiations_ignored, 1);
	assert_true(timer_taken(&f->r) == 300.);

	f->fe.on_ignore = RENEG_CLOSE;
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_FLUSH_END);
	assert_string_equal(f->r.why, "client ignored renegotiation request");
	assert_int_equal(f->st.renegotiations_ignored, 2);
}

static void
test_handshake_timeout(void **state)
{
	struct fixture *f = *state;

	started(f);
	requested(f);
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	/* the handshake could not start in time */
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_END);
	assert_string_equal(f->r.why, "renegotiation handshake timeout");

	setup((void **)&f);
	started(f);
	requested(f);
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	reneg_hs_start(&f->r, &f->fe);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_END);
	assert_string_equal(f->r.why, "renegotiation handshake timeout");
	assert_int_equal(f->st.renegotiations_completed, 0);
}

static void
test_client_initiated_refused(void **state)
{
	struct fixture *f = *state;

	started(f);
	/* client-renegotiation = refuse (the default) */
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_REFUSE);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.client_renegotiations_refused, 1);
	/* GnuTLS hands the parked ClientHello back once: expected */
	assert_int_equal(reneg_unexpected(&f->r), 0);
	/* a second one is not */
	assert_int_equal(reneg_unexpected(&f->r), -1);

	/* allowed by policy, but the connection has no RFC 5746 */
	f->fe.client_renegotiation = 1;
	f->in.safe = 0;
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_REFUSE);
	assert_int_equal(f->st.client_renegotiations_refused, 2);
	f->in.safe = 1;

	/* one of ours is under way */
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_REFUSE);
	assert_int_equal(f->st.client_renegotiations_refused, 3);
	assert_int_equal(f->st.client_renegotiations_allowed, 0);
}

static void
test_client_initiated_limit(void **state)
{
	struct fixture *f = *state;
	int i;

	f->fe.client_renegotiation = 1;
	started(f);
	for (i = 0; i < 2; i++) {
		assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
		    RENEG_GO_ON);
		assert_int_equal(f->r.state, RENEG_HS_WANTED);
		assert_int_equal(f->r.by_client, 1);
		reneg_hs_start(&f->r, &f->fe);
		reneg_hs_done(&f->r, &f->fe, &f->in);
		f->in.now += 1.0;
	}
	assert_int_equal(f->st.client_renegotiations_allowed, 2);
	/* client-initiated ones are not ours: not "completed" */
	assert_int_equal(f->st.renegotiations_completed, 0);
	assert_int_equal(f->r.rekeys, 2);
	/* the third in the same minute is over the limit */
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_REFUSE);
	assert_int_equal(f->st.client_renegotiations_refused, 1);
	assert_int_equal(reneg_unexpected(&f->r), 0);
	/* a minute later it is allowed again */
	f->in.now += 60.0;
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	assert_int_equal(f->st.client_renegotiations_allowed, 3);
}

static void
test_tls13_key_update(void **state)
{
	struct fixture *f = *state;

	f->in.tls13 = 1;
	started(f);
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.queued, RENEG_SEND_KEY_UPDATE);
	f->in.bytes = 77;
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_KEY_UPDATE);
	/* nothing to wait for: straight back to idle */
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.key_updates, 1);
	assert_int_equal(f->st.renegotiations_requested, 0);
	assert_int_equal(f->r.rekeys, 1);
	assert_int_equal(f->r.mark, 77);
	assert_true(timer_taken(&f->r) == 300.);
}

static void
test_unsafe_never_asked(void **state)
{
	struct fixture *f = *state;

	f->in.safe = 0;
	started(f);
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 0);
	assert_int_equal(f->r.unsafe, 1);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_true(timer_taken(&f->r) == 0.);	/* the interval stops */
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 0);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->st.renegotiations_requested, 0);
}

static void
test_closing(void **state)
{
	struct fixture *f = *state;

	started(f);
	f->in.now += 2.;
	f->in.closing = 1;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 0);
	assert_int_equal(f->r.state, RENEG_IDLE);
	f->in.closing = 0;
	/* queued, then the connection starts closing: dropped */
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	(void)timer_taken(&f->r);
	reneg_closing(&f->r);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->r.queued, RENEG_SEND_NONE);
	assert_true(timer_taken(&f->r) == 0.);
	/* closing has no effect on anything but a queued request */
	requested(f);
	reneg_closing(&f->r);
	assert_int_equal(f->r.state, RENEG_WAIT_ANSWER);
}

static void
test_triggers(void **state)
{
	struct fixture *f = *state;

	f->fe.rekey_bytes = 1000;
	started(f);
	f->in.now += 2.;
	f->in.bytes = 999;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	f->in.bytes = 1000;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	/* already queued: a second trigger does nothing */
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "again"), 0);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	reneg_hs_start(&f->r, &f->fe);
	reneg_hs_done(&f->r, &f->fe, &f->in);
	/* the next count starts at the mark */
	f->in.now += 2.;
	f->in.bytes = 1999;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	f->in.bytes = 2000;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 1);

	/* the interval timer in idle asks */
	setup((void **)&f);
	started(f);
	f->in.now += 300.;
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	/* a timer that fires while queued changes nothing */
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	/* rekey-interval 0: no timer at all */
	setup((void **)&f);
	f->fe.rekey_interval_s = 0;
	reneg_start(&f->r, &f->fe, &f->in);
	assert_true(timer_taken(&f->r) == 0.);
}

/*
 * A ClientHello after rekey-timeout (on-ignore = keep) answers the
 * HelloRequest that was ignored: never refused as the client's own, even
 * with client-renegotiation = refuse, and it completes ours.  So does one
 * that meets a new request still queued; a late refusal is a refusal.
 */
static void
test_late_answer(void **state)
{
	struct fixture *f = *state;

	started(f);
	requested(f);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->st.renegotiations_ignored, 1);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_true(reneg_data_allowed(&f->r, 0));	/* keep: data flows */
	f->in.now += 3.;
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_HS_WANTED);
	assert_int_equal(f->r.by_client, 0);
	assert_int_equal(f->st.client_renegotiations_refused, 0);
	reneg_hs_start(&f->r, &f->fe);
	reneg_hs_done(&f->r, &f->fe, &f->in);
	assert_int_equal(f->st.renegotiations_completed, 1);
	/* answered: a ClientHello now is the client's own, and refused */
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_REFUSE);
	assert_int_equal(reneg_unexpected(&f->r), 0);

	/* ignored, then asked again: the ClientHello meets the queued one */
	requested(f);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	assert_int_equal(reneg_client_hello(&f->r, &f->fe, &f->in),
	    RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_HS_WANTED);
	assert_int_equal(f->r.queued, RENEG_SEND_NONE);

	/* a late no_renegotiation is a refusal, with on-refusal's end */
	setup((void **)&f);
	f->fe.on_refusal = RENEG_CLOSE;
	started(f);
	requested(f);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_FLUSH_END);
	assert_int_equal(f->st.renegotiations_refused, 1);

	/*
	 * ... and so is one that comes while a new request waits in the
	 * queue: it answers the old HelloRequest (reneg_awaits_answer, the
	 * one rule the ClientHello, the alert and the noise count share).
	 */
	setup((void **)&f);
	started(f);
	requested(f);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	f->in.now += 2.;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	assert_true(reneg_awaits_answer(&f->r));
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_GO_ON);
	assert_int_equal(f->st.renegotiations_refused, 1);
	assert_false(reneg_awaits_answer(&f->r));
	assert_int_equal(f->r.state, RENEG_QUEUED);	/* the new one goes on */
}

/* At most one rekey a second per connection; intervals get jitter. */
static void
test_pacing(void **state)
{
	struct fixture *f = *state;

	f->in.tls13 = 1;
	f->fe.rekey_bytes = 1000;
	started(f);
	/* the first may go at once */
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	(void)timer_taken(&f->r);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_KEY_UPDATE);
	(void)timer_taken(&f->r);
	/* asked within a second of the last: later, not now */
	f->in.now += 0.25;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_IDLE);
	assert_int_equal(f->r.queued, RENEG_SEND_NONE);
	assert_true(timer_taken(&f->r) == 0.75);
	/* bytes inside the gap ask nothing */
	f->in.bytes = 5000;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	/* the gap's end: the timer asks */
	f->in.now += 0.75;
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_GO_ON);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	assert_int_equal(f->r.queued, RENEG_SEND_KEY_UPDATE);
	f->in.jitter = 0.5;
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_KEY_UPDATE);
	/* the next interval is drawn in its last 10%: 300 * (1 - 0.05) */
	assert_true(timer_taken(&f->r) == 285.);
	/* rekey-bytes again only after the gap */
	f->in.bytes = 7000;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	f->in.now += 1.;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 1);
	/* the machine never asks for a jitter outside [0, 1) */
	f->in.jitter = 7.;
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_KEY_UPDATE);
	assert_true(timer_taken(&f->r) == 300.);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_tls12_accepted, setup),
		cmocka_unit_test_setup(test_late_answer, setup),
		cmocka_unit_test_setup(test_pacing, setup),
		cmocka_unit_test_setup(test_refused_keep_and_close, setup),
		cmocka_unit_test_setup(test_ignored_keep_and_close, setup),
		cmocka_unit_test_setup(test_handshake_timeout, setup),
		cmocka_unit_test_setup(test_client_initiated_refused, setup),
		cmocka_unit_test_setup(test_client_initiated_limit, setup),
		cmocka_unit_test_setup(test_tls13_key_update, setup),
		cmocka_unit_test_setup(test_unsafe_never_asked, setup),
		cmocka_unit_test_setup(test_closing, setup),
		cmocka_unit_test_setup(test_triggers, setup),
	};

	log_init("test_reneg", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
