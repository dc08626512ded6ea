/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testtls.c -- TLS pieces the unit tests share (testtls.h).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "testtls.h"

/* A fresh key of that kind and a certificate for CN=localhost it signed. */
void
testtls_selfsigned(gnutls_pk_algorithm_t pk, unsigned bits,
    gnutls_privkey_t *key, gnutls_pcert_st *pcert)
{
	gnutls_x509_privkey_t xk;
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_privkey_init(&xk), 0);
	assert_int_equal(gnutls_x509_privkey_generate(xk, pk, bits, 0), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, xk), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, "\x01", 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 3600), 0);
	assert_int_equal(gnutls_x509_crt_set_dn(crt, "CN=localhost", NULL), 0);
	/* EdDSA hashes inside the signature: no digest to name */
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, xk,
	    pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_UNKNOWN :
	    GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_pcert_import_x509(pcert, crt, 0), 0);
	assert_int_equal(gnutls_privkey_init(key), 0);
	assert_int_equal(gnutls_privkey_import_x509(*key, xk,
	    GNUTLS_PRIVKEY_IMPORT_COPY), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(xk);
}

/*
 * Server credentials holding a fresh ECDSA P-256 key and its self-signed
 * certificate; they own both, and *pcert stays readable while they live.
 */
void
testtls_server_cred(gnutls_certificate_credentials_t *cred,
    gnutls_pcert_st *pcert)
{
	gnutls_privkey_t key;

	testtls_selfsigned(GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), &key, pcert);
	assert_int_equal(gnutls_certificate_allocate_credentials(cred), 0);
	assert_int_equal(gnutls_certificate_set_key(*cred, NULL, 0, pcert, 1,
	    key), 0);
}

/*
 * Both sessions are non-blocking over a socketpair of this process: call
 * their handshakes in turn until both finish.  0, or the first fatal
 * error (with both results as the failure message).
 */
int
testtls_handshake(gnutls_session_t server, gnutls_session_t client)
{
	int rs = GNUTLS_E_AGAIN, rc = GNUTLS_E_AGAIN, i;

	for (i = 0; i < 1000 && (rs != 0 || rc != 0); i++) {
		if (rc != 0)
			rc = gnutls_handshake(client);
		if (rs != 0)
			rs = gnutls_handshake(server);
		if ((rc < 0 && gnutls_error_is_fatal(rc)) ||
		    (rs < 0 && gnutls_error_is_fatal(rs)))
			break;
	}
	if (rs != 0 || rc != 0)
		fail_msg("handshake: server %s, client %s", gnutls_strerror(rs),
		    gnutls_strerror(rc));
	return 0;
}
