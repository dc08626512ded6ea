/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_keyd_policy.c -- keyd's signing policy (keyd/policy.c): real-shaped
 * TLS content and right-sized digests pass, everything else is refused
 * with the documented error.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "ipc.h"
#include "policy.h"

static struct ipc_key_info k_rsa, k_p256, k_p384, k_ed;

static const uint8_t di_sha256[19] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
    0x20 };
static const uint8_t di_sha384[19] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
    0x30 };
static const uint8_t di_sha512[19] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
    0x40 };

static void
key_make(struct ipc_key_info *k, uint32_t id, uint32_t pk, uint32_t bits)
{
	memset(k, 0, sizeof(*k));
	k->key_id = id;
	k->pk_algo = pk;
	k->bits = bits;
	k->nsign = policy_sign_algos(pk, bits, k->sign_algos,
	    IPC_MAX_SIGN_ALGOS);
}

static int
setup(void **state)
{
	key_make(&k_rsa, 0, GNUTLS_PK_RSA, 2048);
	key_make(&k_p256, 1, GNUTLS_PK_ECDSA, 256);
	key_make(&k_p384, 2, GNUTLS_PK_ECDSA, 384);
	key_make(&k_ed, 3, GNUTLS_PK_EDDSA_ED25519, 256);
	return 0;
}

static int
check(const struct ipc_key_info *k, uint32_t algo, uint32_t form,
    const uint8_t *data, size_t len)
{
	struct ipc_sign_req req;
	const char *why = NULL;
	int r;

	memset(&req, 0, sizeof(req));
	req.key_id = k != NULL ? k->key_id : 0;
	req.sign_algo = algo;
	req.form = form;
	req.data = data;
	req.data_len = len;
	r = policy_sign_check(k, &req, &why);
	assert_non_null(why);	/* every answer has a reason to log */
	return r;
}

static size_t
cv(uint8_t *p, size_t hash_len)
{
	static const char ctx[] = "TLS 1.3, server CertificateVerify";
	size_t i;

	memset(p, 0x20, 64);
	memcpy(p + 64, ctx, sizeof(ctx));
	for (i = 0; i < hash_len; i++)
		p[98 + i] = (uint8_t)(i * 7 + 1);
	return 98 + hash_len;
}

static size_t
ske_ecdh(uint8_t *p, uint16_t group, uint8_t point_len)
{
	size_t i;

	for (i = 0; i < 64; i++)
		p[i] = (uint8_t)(i ^ 0x5c);
	p[64] = 3;
	p[65] = (uint8_t)(group >> 8);
	p[66] = (uint8_t)group;
	p[67] = point_len;
	for (i = 0; i < point_len; i++)
		p[68 + i] = (uint8_t)(i + 9);
	p[68] = group <= 25 ? 0x04 : p[68];
	return 68 + point_len;
}

static size_t
ske_dh(uint8_t *p, size_t plen, uint8_t ptop, size_t glen, size_t ylen)
{
	size_t off = 64;

	memset(p, 0x11, 64);
	p[off++] = (uint8_t)(plen >> 8);
	p[off++] = (uint8_t)plen;
	memset(p + off, 0xff, plen);
	p[off] = ptop;
	off += plen;
	p[off++] = (uint8_t)(glen >> 8);
	p[off++] = (uint8_t)glen;
	memset(p + off, 0x02, glen);
	off += glen;
	p[off++] = (uint8_t)(ylen >> 8);
	p[off++] = (uint8_t)ylen;
	memset(p + off, 0x33, ylen);
	return off + ylen;
}

static void
test_algo_lists(void **state)
{
	uint32_t i;
	int has_raw = 0;

	assert_int_equal(k_rsa.nsign, 6);
	assert_int_equal(k_p256.nsign, 4);
	assert_int_equal(k_p384.nsign, 4);
	assert_int_equal(k_ed.nsign, 1);
	assert_int_equal(k_ed.sign_algos[0], GNUTLS_SIGN_EDDSA_ED25519);
	for (i = 0; i < k_p256.nsign; i++)
		assert_int_not_equal(k_p256.sign_algos[i],
		    GNUTLS_SIGN_ECDSA_SECP384R1_SHA384);
	for (i = 0; i < k_rsa.nsign; i++)
		has_raw |= k_rsa.sign_algos[i] == GNUTLS_SIGN_RSA_RAW;
	assert_false(has_raw);	/* RSA_RAW is how GnuTLS asks, not an offer */
	assert_int_equal(policy_sign_algos(GNUTLS_PK_DSA, 2048,
	    k_rsa.sign_algos, 0), 0);
	assert_int_equal(policy_sign_stat(GNUTLS_SIGN_RSA_RAW),
	    IPC_STAT_RSA_PKCS1);
	assert_int_equal(policy_sign_stat(GNUTLS_SIGN_RSA_PSS_RSAE_SHA384),
	    IPC_STAT_RSA_PSS);
	assert_int_equal(policy_sign_stat(GNUTLS_SIGN_ECDSA_SHA512),
	    IPC_STAT_ECDSA);
	assert_int_equal(policy_sign_stat(GNUTLS_SIGN_EDDSA_ED25519),
	    IPC_STAT_EDDSA);
	assert_int_equal(policy_sign_stat(GNUTLS_SIGN_DSA_SHA256), -EINVAL);
}

static void
test_tls13_cv_accepted(void **state)
{
	uint8_t b[256];

	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), 0);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512,
	    IPC_SIGN_CONTENT, b, cv(b, 48)), 0);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), 0);
	assert_int_equal(check(&k_p384, GNUTLS_SIGN_ECDSA_SECP384R1_SHA384,
	    IPC_SIGN_CONTENT, b, cv(b, 48)), 0);
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), 0);
	assert_true(policy_is_tls13_cv(b, cv(b, 48)));
}

static void
test_tls13_cv_refused(void **state)
{
	uint8_t b[256];
	size_t n;

	/* TLS 1.3 forbids PKCS#1 v1.5 and curve-less ECDSA. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), -EPERM);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA256,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), -EPERM);
	/*
	 * Every transcript-hash length but SHA-256's and SHA-384's, for every
	 * key family: CertificateVerify content is 130 or 146 bytes, nothing
	 * in between or around.
	 */
	for (n = 0; n <= 64; n++) {
		if (n == 32 || n == 48)
			continue;
		assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
		    IPC_SIGN_CONTENT, b, cv(b, n)), -EPERM);
		assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
		    IPC_SIGN_CONTENT, b, cv(b, n)), -EPERM);
		assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
		    IPC_SIGN_CONTENT, b, cv(b, n)), -EPERM);
	}
	/* Trailing byte. */
	n = cv(b, 32);
	b[n] = 0;
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n + 1), -EPERM);
	/* One space less in the prefix. */
	n = cv(b, 32);
	b[10] = 0x21;
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	/* The client's context string. */
	n = cv(b, 32);
	memcpy(b + 64 + 9, "client", 6);
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	/* Missing NUL separator. */
	n = cv(b, 32);
	b[97] = 0x01;
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	/* Prefix only. */
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, 98), -EPERM);
}

static void
test_tls12_ske_accepted(void **state)
{
	uint8_t b[2048];

	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 29, 32)), 0);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 23, 65)), 0);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA384,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 24, 97)), 0);
	assert_int_equal(check(&k_p384, GNUTLS_SIGN_ECDSA_SHA512,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 25, 133)), 0);
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 30, 56)), 0);
	/* DHE, 2048-bit and 4096-bit groups. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA512,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 256, 0xff, 1, 256)), 0);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 512, 0x80, 1, 510)), 0);
	assert_true(policy_is_tls12_ske(b, ske_dh(b, 256, 0x80, 256, 1)));
}

static void
test_tls12_ske_refused(void **state)
{
	uint8_t b[2048];
	size_t n;

	/* Point size not the group's. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 29, 31)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 23, 33)), -EPERM);
	/* Compressed NIST point. */
	n = ske_ecdh(b, 23, 65);
	b[68] = 0x02;
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	/* Unknown group, explicit curves. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 22, 32)), -EPERM);
	n = ske_ecdh(b, 29, 32);
	b[64] = 1;
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	/* Length byte says one thing, content another. */
	n = ske_ecdh(b, 29, 32);
	b[n] = 0xaa;
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n + 1), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n - 1), -EPERM);
	/* Randoms only, or less. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, 64), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, 67), -EPERM);
	/* DHE: small group, leading zero, g or Ys too long, trailing, empty. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 128, 0xff, 1, 128)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 256, 0x7f, 1, 256)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 257, 0x00, 1, 256)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 256, 0xff, 257, 1)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_dh(b, 256, 0xff, 1, 0)), -EPERM);
	n = ske_dh(b, 256, 0xff, 1, 256);
	b[n] = 0;
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n + 1), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n - 1), -EPERM);
}

static void
test_garbage_refused(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
	uint8_t b[IPC_MAX_SIGN_DATA];

	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, (const uint8_t *)http, sizeof(http) - 1), -EPERM);
	memset(b, 0x20, sizeof(b));
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, sizeof(b)), -EPERM);
	memset(b, 0, sizeof(b));
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, 1), -EPERM);
	/* A bare hash sent as content is not content. */
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, 32), -EPERM);
}

static void
test_digests(void **state)
{
	uint8_t b[128];

	memset(b, 0x42, sizeof(b));
	/* ECDSA: exactly the hash of the algorithm. */
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_DIGEST, b, 32), 0);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA384,
	    IPC_SIGN_DIGEST, b, 48), 0);
	assert_int_equal(check(&k_p384, GNUTLS_SIGN_ECDSA_SHA512,
	    IPC_SIGN_DIGEST, b, 64), 0);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA256,
	    IPC_SIGN_DIGEST, b, 48), -EPERM);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA256,
	    IPC_SIGN_DIGEST, b, 20), -EPERM);	/* SHA-1 sized */
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SHA256,
	    IPC_SIGN_DIGEST, b, 33), -EPERM);
	/* RSA-PSS likewise. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
	    IPC_SIGN_DIGEST, b, 48), 0);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
	    IPC_SIGN_DIGEST, b, 32), -EPERM);
	/* RSA PKCS#1 v1.5 digests come only as RSA_RAW DigestInfo. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_DIGEST, b, 32), -EPERM);
	/* EdDSA never signs a digest. */
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_DIGEST, b, 32), -EPERM);
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_DIGEST, b, 64), -EPERM);
}

static void
test_rsa_raw(void **state)
{
	uint8_t b[128];

	memset(b, 0x42, sizeof(b));
	memcpy(b, di_sha256, 19);
	assert_int_equal(policy_digestinfo_hash_len(b, 19 + 32), 32);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 32), 0);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 33), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 31), -EPERM);
	memcpy(b, di_sha384, 19);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 48), 0);
	memcpy(b, di_sha512, 19);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 64), 0);
	/* A SHA-256 prefix claiming a SHA-512-sized digest. */
	memcpy(b, di_sha256, 19);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 64), -EPERM);
	/* One changed byte in the OID. */
	memcpy(b, di_sha256, 19);
	b[14] = 0x04;	/* SHA-224 */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 32), -EPERM);
	/* TLS 1.0 MD5+SHA-1, bare hashes. */
	memset(b, 0x42, sizeof(b));
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    36), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    32), -EPERM);
	/* RSA_RAW over content, or for a key that is not RSA. */
	memcpy(b, di_sha256, 19);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_CONTENT, b,
	    19 + 32), -EPERM);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, b,
	    19 + 32), -EINVAL);
}

static void
test_wrong_algo_or_key(void **state)
{
	struct ipc_sign_req req;
	uint8_t b[256];
	size_t n = cv(b, 32);

	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);
	assert_int_equal(check(&k_p256, GNUTLS_SIGN_ECDSA_SECP384R1_SHA384,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);
	assert_int_equal(check(&k_p384, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);
	assert_int_equal(check(&k_ed, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA1,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_PSS_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EINVAL);	/* needs an RSA-PSS key */
	assert_int_equal(check(&k_rsa, 0xdeadbeef, IPC_SIGN_CONTENT, b, n),
	    -EINVAL);
	/* No key, another key's id, out-of-range id. */
	assert_int_equal(check(NULL, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n), -ENOENT);
	memset(&req, 0, sizeof(req));
	req.key_id = 9;
	req.sign_algo = GNUTLS_SIGN_EDDSA_ED25519;
	req.form = IPC_SIGN_CONTENT;
	req.data = b;
	req.data_len = n;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -ENOENT);
	req.key_id = IPC_MAX_KEYS + 3;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -ENOENT);
	/* Malformed: bad form, no data, too much data, flags. */
	req.key_id = k_ed.key_id;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), 0);
	req.form = 7;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -EBADMSG);
	req.form = IPC_SIGN_CONTENT;
	req.data_len = 0;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -EBADMSG);
	req.data_len = IPC_MAX_SIGN_DATA + 1;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -EBADMSG);
	req.data_len = n;
	req.flags = 1;
	assert_int_equal(policy_sign_check(&k_ed, &req, NULL), -EBADMSG);
}

static void
test_decrypt_policy(void **state)
{
	struct ipc_decrypt_req req;
	uint8_t b[512];
	const char *why;

	memset(b, 1, sizeof(b));
	memset(&req, 0, sizeof(req));
	req.key_id = k_rsa.key_id;
	req.data = b;
	req.data_len = 256;
	assert_int_equal(policy_decrypt_check(&k_rsa, 0, &req, &why), -EPERM);
	assert_int_equal(policy_decrypt_check(&k_rsa, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), 0);
	req.data_len = 255;
	assert_int_equal(policy_decrypt_check(&k_rsa, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), -EPERM);
	req.data_len = 512;
	assert_int_equal(policy_decrypt_check(&k_rsa, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), -EPERM);
	req.key_id = k_p256.key_id;
	req.data_len = 256;
	assert_int_equal(policy_decrypt_check(&k_p256, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), -EPERM);
	assert_int_equal(policy_decrypt_check(NULL, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), -ENOENT);
	req.key_id = k_rsa.key_id;
	req.data_len = 0;
	assert_int_equal(policy_decrypt_check(&k_rsa, IPC_KEY_F_ALLOW_DECRYPT,
	    &req, &why), -EBADMSG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_algo_lists),
		cmocka_unit_test(test_tls13_cv_accepted),
		cmocka_unit_test(test_tls13_cv_refused),
		cmocka_unit_test(test_tls12_ske_accepted),
		cmocka_unit_test(test_tls12_ske_refused),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_digests),
		cmocka_unit_test(test_rsa_raw),
		cmocka_unit_test(test_wrong_algo_or_key),
		cmocka_unit_test(test_decrypt_policy),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
