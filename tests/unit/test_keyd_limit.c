/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_keyd_limit.c -- keyd's limits (keyd/keyd_limit.c): the token
 * bucket, the automatic rule of keyd.c's header (a key's limit from the
 * time one of its operations took, the channels' from the keys, 2 s of
 * burst), and the once-a-minute rate-limit report.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyd_limit.h"

#define S	1000000ull	/* one second in microseconds */

static void
test_bucket(void **state)
{
	struct keyd_limit_bucket b;
	int i;

	keyd_limit_bucket_init(&b, 10, 0);
	for (i = 0; i < 10; i++)
		assert_true(keyd_limit_bucket_take(&b, 1, 10, 0));
	assert_false(keyd_limit_bucket_take(&b, 1, 10, 0));
	/* One second at 1/s gives one token back, and no more. */
	assert_true(keyd_limit_bucket_take(&b, 1, 10, S));
	assert_false(keyd_limit_bucket_take(&b, 1, 10, S));
	/* A long pause refills to the burst, not beyond. */
	for (i = 0; i < 10; i++)
		assert_true(keyd_limit_bucket_take(&b, 1, 10, 100 * S));
	assert_false(keyd_limit_bucket_take(&b, 1, 10, 100 * S));
}

/* A key's limit: threads / seconds per operation, or --key-rate. */
static void
test_key_auto(void **state)
{
	struct keyd_key_limit kl;

	memset(&kl, 0, sizeof(kl));
	keyd_limit_key_set(&kl, 0.001, 2, 0);	/* 1 ms, 2 threads */
	assert_true(kl.capacity > 1999.9 && kl.capacity < 2000.1);
	assert_true(kl.rate == kl.capacity);
	assert_true(kl.burst > 3999.9 && kl.burst < 4000.1);	/* 2 s */
	assert_true(kl.bucket.tokens == kl.burst);	/* starts full */
	keyd_limit_key_set(&kl, 0.001, 2, 5);	/* --key-rate 5 */
	assert_true(kl.capacity > 1999.9 && kl.rate == 5 && kl.burst == 10);
	keyd_limit_key_set(&kl, 0.001, 2, 5000);	/* above capacity */
	assert_true(kl.rate == 5000);
	keyd_limit_key_set(&kl, 0, 2, 5);		/* dropped */
	assert_true(kl.rate == 0 && kl.capacity == 0);
	keyd_limit_key_set(&kl, 100, 1, 0);		/* a very slow key */
	assert_true(kl.rate == 0.01 && kl.burst == 1);
}

/* The channels' limit follows the fastest key, with a floor. */
static void
test_chan_auto(void **state)
{
	struct keyd_key_limit kl[4];
	double rate, burst;

	memset(kl, 0, sizeof(kl));
	keyd_limit_chan_rate(kl, 4, 0, 0, &rate, &burst);
	assert_true(rate == KEYD_LIMIT_RATE_MIN && burst == 2 * rate);
	keyd_limit_key_set(&kl[1], 0.001, 2, 0);	/* 2000/s */
	keyd_limit_key_set(&kl[3], 0.0001, 2, 0);	/* 20000/s */
	keyd_limit_chan_rate(kl, 4, 0, 0, &rate, &burst);
	assert_true(rate > 19999 && rate < 20001);
	assert_true(burst > 39999 && burst < 40001);
	/* --key-rate does not change what a channel may ask of keyd. */
	keyd_limit_key_set(&kl[3], 0.0001, 2, 5);
	keyd_limit_chan_rate(kl, 4, 0, 0, &rate, &burst);
	assert_true(rate > 19999 && rate < 20001);
	/* --rate-limit and --rate-burst win. */
	keyd_limit_chan_rate(kl, 4, 7, 0, &rate, &burst);
	assert_true(rate == 7 && burst == 14);
	keyd_limit_chan_rate(kl, 4, 7, 3, &rate, &burst);
	assert_true(rate == 7 && burst == 3);
	keyd_limit_chan_rate(kl, 4, 0, 3, &rate, &burst);
	assert_true(rate > 19999 && burst == 3);
	/* Every key dropped: back to the floor. */
	keyd_limit_key_set(&kl[1], 0, 2, 0);
	keyd_limit_key_set(&kl[3], 0, 2, 0);
	keyd_limit_chan_rate(kl, 4, 0, 0, &rate, &burst);
	assert_true(rate == KEYD_LIMIT_RATE_MIN);
}

/* One line at once, then at most one a minute with the count since. */
static void
test_report(void **state)
{
	struct keyd_limit_report r;
	const uint64_t min = KEYD_LIMIT_REPORT_US;
	uint64_t count, t0 = 5 * S;
	int i;

	memset(&r, 0, sizeof(r));
	assert_false(keyd_limit_report_take(&r, min, 0, t0, &count));
	assert_true(keyd_limit_report_take(&r, min, 1, t0, &count));
	assert_int_equal(count, 1);
	for (i = 0; i < 99; i++)
		assert_false(keyd_limit_report_take(&r, min, 1, t0 + S,
		    &count));
	/* The timer, before the minute is up and after. */
	assert_false(keyd_limit_report_take(&r, min, 0, t0 + 30 * S, &count));
	assert_true(keyd_limit_report_take(&r, min, 0, t0 + min, &count));
	assert_int_equal(count, 99);
	/* Nothing refused since: no line, however long it has been. */
	assert_false(keyd_limit_report_take(&r, min, 0, t0 + 10 * min, &count));
	/* The next refusal after a quiet minute is reported at once. */
	assert_true(keyd_limit_report_take(&r, min, 1, t0 + 10 * min, &count));
	assert_int_equal(count, 1);
	assert_false(keyd_limit_report_take(&r, min, 1, t0 + 10 * min + S,
	    &count));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_key_auto),
		cmocka_unit_test(test_chan_auto),
		cmocka_unit_test(test_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
