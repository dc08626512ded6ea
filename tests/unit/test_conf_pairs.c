/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_conf_pairs.c -- several cert/key pairs per frontend (conf_pair.c):
 * each key = pairs with the cert = before it, every pair gets keyd's flags
 * for its own key type, a key = before the first cert = still pairs with
 * it (as before pairs repeated), each ocsp = belongs to the cert = before
 * it, the limits per frontend and over all
 * frontends hold, and every pair the largest config can have owns two keyd
 * slots of its own.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "../../daemon/conf.h"
#include "testconf.h"

#define FE_HEAD \
	"[frontend www]\n" \
	"listen = 127.0.0.1:8443\n" \
	"backend = 127.0.0.1:8080\n"

static void
test_three_pairs_in_order(void **state)
{
	const struct frontend *fe;

	(void)state;
	/* lines 4..6 are the frontend's head, 7 is blank: pairs from 8 */
	fe = expect_load(MOAT_HEAD FE_HEAD "\n"
	    "cert = %A\nkey = %a\n"
	    "cert = %R\nkey = %r\n"
	    "cert = %E\nkey = %e\n");
	assert_int_equal(fe->ncerts, 3);
	assert_string_equal(fe->certs[0].cert, cert_a);
	assert_string_equal(fe->certs[0].key, key_a);
	assert_string_equal(fe->certs[1].cert, cert_rsa);
	assert_string_equal(fe->certs[1].key, key_rsa);
	assert_string_equal(fe->certs[2].cert, cert_ed);
	assert_string_equal(fe->certs[2].key, key_ed);
	assert_int_equal(fe->certs[0].cert_line, 8);
	assert_int_equal(fe->certs[1].key_line, 11);
	assert_int_equal(fe->certs[2].cert_line, 12);
	/* each key's type, and what keyd may do with it, is its own */
	assert_int_equal(fe->certs[0].cert_pk, GNUTLS_PK_ECDSA);
	assert_int_equal(fe->certs[1].cert_pk, GNUTLS_PK_RSA);
	assert_int_equal(fe->certs[2].cert_pk, GNUTLS_PK_EDDSA_ED25519);
	assert_int_equal(fe->certs[0].keyd_flags, IPC_KEY_F_ALLOW_DIGEST);
	assert_int_equal(fe->certs[1].keyd_flags, IPC_KEY_F_ALLOW_DIGEST);
	assert_int_equal(fe->certs[2].keyd_flags, 0);
	assert_int_equal(fe->certs[0].cert_fd, -1);
	assert_int_equal(fe->certs[2].cert_fd, -1);
}

static void
test_key_before_first_cert(void **state)
{
	const struct frontend *fe;

	(void)state;
	fe = expect_load(MOAT_HEAD FE_HEAD "key = %a\ncert = %A\n");
	assert_int_equal(fe->ncerts, 1);
	assert_string_equal(fe->certs[0].cert, cert_a);
	assert_string_equal(fe->certs[0].key, key_a);
	/* and a second pair after it pairs in order again */
	fe = expect_load(MOAT_HEAD FE_HEAD "key = %a\ncert = %A\n"
	    "cert = %R\nkey = %r\n");
	assert_int_equal(fe->ncerts, 2);
	assert_string_equal(fe->certs[1].key, key_rsa);
}

static void
test_pairing_errors(void **state)
{
	(void)state;
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\ncert = %R\nkey = %r\n", 8,
	    "cert = again, but the cert = on line 7 has no key = yet");
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\nkey = %a\ncert = %R\n", 9,
	    "frontend www: cert = without its key =");
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\nkey = %a\nkey = %r\n", 9,
	    "a second key = for the cert = on line 7 (first on line 8)");
	expect_error(MOAT_HEAD FE_HEAD "key = %a\nkey = %r\ncert = %A\n", 8,
	    "a second key = before any cert = (first on line 7)");
	/* the ordinary duplicate check still holds for every other key */
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\nkey = %a\n"
	    "backend = 127.0.0.1:8081\n", 9, "duplicate key 'backend'");
}

static void
test_at_most_eight_per_frontend(void **state)
{
	char text[8192];
	size_t o;
	unsigned i;

	(void)state;
	o = (size_t)snprintf(text, sizeof(text), "%s", MOAT_HEAD FE_HEAD);
	for (i = 0; i < CONFIG_MAX_CERTS; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "cert = %%%c\nkey = %%%c\n", i % 2 ? 'R' : 'A',
		    i % 2 ? 'r' : 'a');
	assert_int_equal(expect_load(text)->ncerts, CONFIG_MAX_CERTS);
	snprintf(text + o, sizeof(text) - o, "cert = %%A\nkey = %%a\n");
	/* 7 lines before the pairs, two per pair: the ninth cert = */
	expect_error(text, 7 + 2 * CONFIG_MAX_CERTS,
	    "frontend www: more than 8 cert = lines");
}

static void
test_at_most_48_over_all_frontends(void **state)
{
	char text[8192];
	size_t o;
	unsigned f, i, n = 0;

	(void)state;
	o = (size_t)snprintf(text, sizeof(text), "%s", MOAT_HEAD);
	for (f = 0; f < 7; f++) {
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "[frontend f%u]\nlisten = 127.0.0.1:%u\n"
		    "backend = 127.0.0.1:8080\n", f, 8443 + f);
		for (i = 0; i < 7 && n < CONFIG_MAX_CERTS_TOTAL; i++, n++)
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "cert = %%A\nkey = %%a\n");
	}
	assert_true(o < sizeof(text));
	expect_load(text);
	assert_int_equal(cfg.nfrontends, 7);
	assert_int_equal(cfg.frontends[6].ncerts, CONFIG_MAX_CERTS_TOTAL - 42);
	/* one more pair in the last frontend: keyd could not hold them all */
	snprintf(text + o, sizeof(text) - o, "cert = %%A\nkey = %%a\n");
	conf_write(text);
	assert_int_not_equal(config_load(conf_path, &cfg, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "more than 48 certificates over all "
	    "frontends"));
}

static void
test_ocsp_belongs_to_the_cert_before(void **state)
{
	const struct frontend *fe;

	(void)state;
	fe = expect_load("[moat]\nuser = nobody\nkeyd-user = daemon\n"
	    "ocsp-check-interval = 5s\n" FE_HEAD
	    "cert = %A\nkey = %a\ncert = %R\nocsp = /var/lib/moat/b.der\n"
	    "key = %r\n");
	assert_int_equal(cfg.ocsp_check_ms, 5000);
	assert_string_equal(fe->certs[0].ocsp, "");
	assert_string_equal(fe->certs[1].ocsp, "/var/lib/moat/b.der");
	assert_int_equal(fe->certs[1].ocsp_line, 11);
	assert_int_equal(fe->certs[0].ocsp_fd, -1);
	assert_int_equal(fe->certs[1].ocsp_fd, -1);
	fe = expect_load(MOAT_HEAD FE_HEAD "cert = %A\nkey = %a\n");
	assert_int_equal(cfg.ocsp_check_ms, 60000);	/* the default */
	expect_error(MOAT_HEAD FE_HEAD "ocsp = /a.der\ncert = %A\nkey = %a\n",
	    7, "ocsp = before any cert =");
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\nocsp = /a.der\n"
	    "ocsp = /b.der\nkey = %a\n", 9,
	    "a second ocsp = for the cert = on line 7 (first on line 8)");
	expect_error(MOAT_HEAD FE_HEAD "cert = %A\nkey = %a\nocsp = a.der\n",
	    9, "ocsp");
}

/* Both generations of every pair of every frontend: one slot each. */
static void
test_every_pair_owns_two_slots(void **state)
{
	static uint8_t used[IPC_MAX_KEYS];
	unsigned f, c, g;
	uint32_t s;

	(void)state;
	assert_true(CONFIG_MAX_FRONTENDS * CONFIG_MAX_CERTS * 2 <= IPC_MAX_KEYS);
	assert_true(2 * CONFIG_MAX_CERTS_TOTAL <= IPC_MAX_KEYS_HELD);
	/* keyd's whole list (IPC_KEY_LIST_REPLY) fits one message */
	assert_true(sizeof(uint32_t) + IPC_MAX_KEYS_HELD *
	    sizeof(struct ipc_key_info) <= IPC_MAX_PAYLOAD);
	memset(used, 0, sizeof(used));
	for (f = 0; f < CONFIG_MAX_FRONTENDS; f++)
		for (c = 0; c < CONFIG_MAX_CERTS; c++)
			for (g = 0; g < 2; g++) {
				s = IPC_KEY_SLOT(f, c, g);
				assert_true(s < IPC_MAX_KEYS);
				if (used[s]++)
					fail_msg("slot %u twice (frontend %u, "
					    "cert %u, generation %u)", s, f, c,
					    g);
				/* generations alternate between the two */
				assert_int_equal(IPC_KEY_SLOT(f, c, g + 2), s);
			}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_pairs_in_order),
		cmocka_unit_test(test_key_before_first_cert),
		cmocka_unit_test(test_pairing_errors),
		cmocka_unit_test(test_at_most_eight_per_frontend),
		cmocka_unit_test(test_at_most_48_over_all_frontends),
		cmocka_unit_test(test_ocsp_belongs_to_the_cert_before),
		cmocka_unit_test(test_every_pair_owns_two_slots),
	};

	return cmocka_run_group_tests(tests, testconf_setup, testconf_teardown);
}
