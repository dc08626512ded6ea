/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_conf_keyd.c -- what moat.conf lets keyd do with a frontend's key,
 * and what it refuses because it would put a key at risk: the digest and
 * DHE permissions derived from the priority and the certificate's key type
 * (config_keyd_flags()), keyd-sign = content-only and the priorities that
 * contradict it, keyd's rate limits, a certificate file that also holds a
 * private key, and workers sharing keyd's user.
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

#define TLS13_ONLY	"NORMAL:-VERS-ALL:+VERS-TLS1.3"

/* Load [moat] + one frontend with cert, key and the extra lines. */
static const struct frontend *
load(const char *cert, const char *key, const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text), MOAT_HEAD
	    "[frontend www]\n"
	    "listen = 127.0.0.1:8443\n"
	    "backend = 127.0.0.1:8080\n"
	    "cert = %s\n"
	    "key = %s\n"
	    "%s", cert, key, extra);
	return expect_load(text);
}

static void
test_digest_only_where_tls12_signs_with_the_key(void **state)
{
	const struct frontend *fe;

	/* the default priority: TLS 1.2 with ECDHE-ECDSA and ECDHE-RSA */
	fe = load("%A", "%a", "");
	assert_int_equal(fe->certs[0].cert_pk, GNUTLS_PK_ECDSA);
	assert_int_equal(fe->certs[0].keyd_flags, IPC_KEY_F_ALLOW_DIGEST);
	fe = load("%R", "%r", "");
	assert_int_equal(fe->certs[0].cert_pk, GNUTLS_PK_RSA);
	assert_int_equal(fe->certs[0].keyd_flags, IPC_KEY_F_ALLOW_DIGEST);
	/* EdDSA: GnuTLS hands keyd the content itself, under TLS 1.2 too */
	fe = load("%E", "%e", "");
	assert_int_equal(fe->certs[0].cert_pk, GNUTLS_PK_EDDSA_ED25519);
	assert_int_equal(fe->certs[0].keyd_flags, 0);
	/* TLS 1.3 only: keyd checks every byte it signs */
	fe = load("%A", "%a", "priority = " TLS13_ONLY "\n");
	assert_int_equal(fe->certs[0].keyd_flags, 0);
	fe = load("%R", "%r", "priority = " TLS13_ONLY "\n");
	assert_int_equal(fe->certs[0].keyd_flags, 0);
	/* TLS 1.2 but no key exchange that signs with this key */
	fe = load("%R", "%r", "priority = NORMAL:-VERS-ALL:+VERS-TLS1.2:"
	    "-KX-ALL:+ECDHE-ECDSA\n");
	assert_int_equal(fe->certs[0].keyd_flags, 0);
}

static void
test_dhe_and_decrypt(void **state)
{
	const struct frontend *fe;

	fe = load("%R", "%r", "allow-rsa-kx = yes\n");
	assert_int_equal(fe->certs[0].keyd_flags, IPC_KEY_F_ALLOW_DIGEST |
	    IPC_KEY_F_ALLOW_DECRYPT);
	fe = load("%R", "%r", "priority = NORMAL:-VERS-ALL:+VERS-TLS1.2:"
	    "-KX-ALL:+DHE-RSA\n");
	assert_int_equal(fe->certs[0].keyd_flags, IPC_KEY_F_ALLOW_DIGEST |
	    IPC_KEY_F_ALLOW_DHE);
	/* the default priority has no DHE */
	fe = load("%R", "%r", "");
	assert_false(fe->certs[0].keyd_flags & IPC_KEY_F_ALLOW_DHE);
}

static void
test_content_only(void **state)
{
	const struct frontend *fe;

	/* a priority that would need bare digests is refused, at keyd-sign */
	expect_error(MOAT_HEAD FRONTEND_OK "keyd-sign = content-only\n", 9,
	    "frontend www: the priority enables TLS 1.2 for this EC/ECDSA key, "
	    "which keyd can only sign as a bare digest, and keyd-sign = "
	    "content-only forbids that");
	/* and at the priority line when that comes later */
	expect_error(MOAT_HEAD "[frontend www]\n"
	    "listen = 127.0.0.1:8443\nbackend = 127.0.0.1:8080\n"
	    "cert = %R\nkey = %r\nkeyd-sign = content-only\n"
	    "priority = NORMAL\n", 9, "keyd-sign = content-only forbids that");
	/* TLS 1.3 only, or an Ed25519 key: fine, and no digest ever */
	fe = load("%A", "%a", "keyd-sign = content-only\n"
	    "priority = " TLS13_ONLY "\n");
	assert_int_equal(fe->keyd_sign_content_only, 1);
	assert_int_equal(fe->certs[0].keyd_flags, 0);
	fe = load("%E", "%e", "keyd-sign = content-only\n");
	assert_int_equal(fe->certs[0].keyd_flags, 0);
	fe = load("%A", "%a", "keyd-sign = digest-for-tls12\n");
	assert_int_equal(fe->keyd_sign_content_only, 0);
	expect_error(MOAT_HEAD FRONTEND_OK "keyd-sign = never\n", 9,
	    "bad keyd-sign 'never' (expected digest-for-tls12 or content-only)");
}

static void
test_rates(void **state)
{
	conf_write(MOAT_HEAD FRONTEND_OK);
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.keyd_rate, 0);		/* auto */
	assert_int_equal(cfg.keyd_key_rate, 0);
	conf_write(MOAT_HEAD "keyd-rate = 500\nkeyd-key-rate = auto\n"
	    FRONTEND_OK);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.keyd_rate, 500);
	assert_int_equal(cfg.keyd_key_rate, 0);
	conf_write(MOAT_HEAD "keyd-key-rate = 1200\n" FRONTEND_OK);
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.keyd_key_rate, 1200);
	expect_error(MOAT_HEAD "keyd-rate = 0\n" FRONTEND_OK, 4, "keyd-rate");
	expect_error(MOAT_HEAD "keyd-key-rate = fast\n" FRONTEND_OK, 4,
	    "keyd-key-rate");
}

/* A HAProxy-style cert+key file would put the key in every worker. */
static void
test_combined_pem_refused(void **state)
{
	char why[512];
	int pk;

	expect_error(MOAT_HEAD "[frontend www]\n"
	    "listen = 127.0.0.1:8443\nbackend = 127.0.0.1:8080\n"
	    "cert = %C\nkey = %a\n", 7, "holds a private key (BEGIN EC "
	    "PRIVATE KEY): the master and every worker read the certificate "
	    "file, so the key must be in its own file");
	assert_int_equal(config_check_cert_file(combined, &pk, why,
	    sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "holds a private key"));
	/* a key file alone, even without a certificate, says the same */
	assert_int_equal(config_check_cert_file(key_rsa, &pk, why,
	    sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "holds a private key (BEGIN RSA PRIVATE "
	    "KEY)"));
}

static void
test_users_apart(void **state)
{
	expect_error("[moat]\nuser = nobody\nkeyd-user = nobody\n" FRONTEND_OK,
	    3, "user 'nobody' and keyd-user 'nobody' are the same uid 65534: "
	    "a worker could then reach keyd's process");
	expect_error("[moat]\nkeyd-user = nobody\nuser = nobody\n" FRONTEND_OK,
	    3, "are the same uid");
	expect_error("[moat]\nuser = root\nkeyd-user = daemon\n" FRONTEND_OK,
	    2, "is root: a sandbox user must not be uid 0");
	expect_error("[moat]\nuser = nobody\nkeyd-user = root\n" FRONTEND_OK,
	    3, "is root: a sandbox user must not be uid 0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_only_where_tls12_signs_with_the_key),
		cmocka_unit_test(test_dhe_and_decrypt),
		cmocka_unit_test(test_content_only),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_combined_pem_refused),
		cmocka_unit_test(test_users_apart),
	};

	return cmocka_run_group_tests(tests, testconf_setup, testconf_teardown);
}
