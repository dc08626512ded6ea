/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_conf_metrics.c -- metrics-listen in [moat]: off unless written, a
 * port alone binds loopback, an address is taken as written, and each bad
 * value is refused at its FILE:LINE.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../daemon/conf.h"
#include "testconf.h"

/* [moat] with one more line (line 4 of the file), then a frontend. */
static void
load_metrics(const char *line)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s\n%s", MOAT_HEAD, line, FRONTEND_OK);
	conf_write(text);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", line, err);
}

static void
test_off_by_default(void **state)
{
	load_metrics("; nothing");
	assert_int_equal(cfg.metrics_listen.len, 0);
}

static void
test_port_alone_is_loopback(void **state)
{
	const struct sockaddr_in *sin;

	load_metrics("metrics-listen = 9100");
	sin = (const struct sockaddr_in *)&cfg.metrics_listen.ss;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(sin->sin_port), 9100);
	assert_string_equal(cfg.metrics_listen.text, "127.0.0.1:9100");
}

static void
test_address_as_written(void **state)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	load_metrics("metrics-listen = 0.0.0.0:9200");
	sin = (const struct sockaddr_in *)&cfg.metrics_listen.ss;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(sin->sin_port), 9200);
	load_metrics("metrics-listen = [::1]:9300");
	sin6 = (const struct sockaddr_in6 *)&cfg.metrics_listen.ss;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 9300);
}

static void
test_refused(void **state)
{
	expect_error(MOAT_HEAD "metrics-listen = localhost:9100\n" FRONTEND_OK,
	    4, "bad address in metrics-listen 'localhost:9100'");
	expect_error(MOAT_HEAD "metrics-listen = 127.0.0.1:0\n" FRONTEND_OK,
	    4, "bad port in metrics-listen '127.0.0.1:0'");
	expect_error(MOAT_HEAD "metrics-listen = 70000\n" FRONTEND_OK, 4,
	    "bad port in metrics-listen '70000'");
	expect_error(MOAT_HEAD "metrics-listen = 1234567\n" FRONTEND_OK, 4,
	    "bad port in metrics-listen '1234567'");
	expect_error(MOAT_HEAD "metrics-listen = unix:/run/m.sock\n"
	    FRONTEND_OK, 4, "bad metrics-listen 'unix:/run/m.sock'");
	expect_error(MOAT_HEAD "metrics-listen =\n" FRONTEND_OK, 4,
	    "metrics-listen");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_by_default),
		cmocka_unit_test(test_port_alone_is_loopback),
		cmocka_unit_test(test_address_as_written),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, testconf_setup, testconf_teardown);
}
