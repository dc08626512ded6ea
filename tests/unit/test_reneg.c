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
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	assert_int_equal(f->r.state, RENEG_QUEUED);
	assert_int_equal(f->r.queued, RENEG_SEND_HELLO_REQUEST);
	assert_true(timer_taken(&f->r) == 0.);
	/* data still flows while it is only queued */
	assert_true(reneg_data_allowed(&f->r, 0));
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(f->r.state, RENEG_WAIT_ANSWER);
	assert_int_equal(f->r.queued, RENEG_SEND_NONE);
	assert_int_equal(f->st.renegotiations_requested, 1);
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

	/* on-refusal close: the connection ends, and says why */
	f->fe.on_refusal = RENEG_CLOSE;
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(reneg_alert(&f->r, &f->fe, &f->in,
	    GNUTLS_A_NO_RENEGOTIATION), RENEG_END);
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
	assert_int_equal(reneg_ask(&f->r, &f->fe, &f->in, "test"), 1);
	reneg_sent(&f->r, &f->fe, &f->in, RENEG_SEND_HELLO_REQUEST);
	assert_int_equal(reneg_timer(&f->r, &f->fe, &f->in), RENEG_END);
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
	f->in.bytes = 1999;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 0);
	f->in.bytes = 2000;
	assert_int_equal(reneg_bytes(&f->r, &f->fe, &f->in), 1);

	/* the interval timer in idle asks */
	setup((void **)&f);
	started(f);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_tls12_accepted, setup),
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
