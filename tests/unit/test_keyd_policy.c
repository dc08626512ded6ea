/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_keyd_policy.c -- keyd's signing policy (keyd/policy.c): real-shaped
 * TLS content and right-sized digests pass, everything else is refused
 * with the documented error.  The key's load flags decide two things:
 * digests only with IPC_KEY_F_ALLOW_DIGEST, DH-shaped content only with
 * IPC_KEY_F_ALLOW_DHE (and then only an RFC 7919 group).  ECDHE points are
 * real ones made by GnuTLS, so the on-curve check is met by what a
 * handshake sends and refused for a point one bit away.
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
#include <gnutls/abstract.h>

#include "ipc.h"
#include "policy.h"

static struct ipc_key_info k_rsa, k_p256, k_p384, k_ed;

/* A key that serves TLS 1.2 with DHE too: what the older tests assume. */
#define F_ALL	(IPC_KEY_F_ALLOW_DIGEST | IPC_KEY_F_ALLOW_DHE)

/* One NIST curve: its TLS group, coordinate size and a real point. */
struct curve {
	uint16_t		group;
	size_t			coord;
	gnutls_ecc_curve_t	gc;
	uint8_t			point[1 + 2 * 66];	/* 0x04 || X || Y */
};

static struct curve curves[] = {
	{ 23, 32, GNUTLS_ECC_CURVE_SECP256R1, { 0 } },
	{ 24, 48, GNUTLS_ECC_CURVE_SECP384R1, { 0 } },
	{ 25, 66, GNUTLS_ECC_CURVE_SECP521R1, { 0 } },
};
#define NCURVES	(sizeof(curves) / sizeof(curves[0]))

/* The RFC 7919 groups as GnuTLS exports them. */
static const gnutls_datum_t *const dh_primes[] = {
	&gnutls_ffdhe_2048_group_prime, &gnutls_ffdhe_3072_group_prime,
	&gnutls_ffdhe_4096_group_prime, &gnutls_ffdhe_6144_group_prime,
	&gnutls_ffdhe_8192_group_prime,
};
#define NDH	(sizeof(dh_primes) / sizeof(dh_primes[0]))
#define SKE_MAX	(64 + 6 + 2 * 1025 + 8)	/* ffdhe8192, 0-led Ys */

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
	k->nsign = ipc_sigalg_list(pk, bits, k->sign_algos,
	    IPC_MAX_SIGN_ALGOS);
}

/* A fresh key's public point, as GnuTLS would put it in a handshake. */
static void
curve_point(struct curve *c)
{
	gnutls_privkey_t priv;
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t got;
	gnutls_datum_t x, y;

	assert_int_equal(gnutls_privkey_init(&priv), 0);
	assert_int_equal(gnutls_pubkey_init(&pub), 0);
	assert_int_equal(gnutls_privkey_generate(priv, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(c->gc), 0), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pub, priv, 0, 0), 0);
	assert_int_equal(gnutls_pubkey_export_ecc_raw2(pub, &got, &x, &y,
	    GNUTLS_EXPORT_FLAG_NO_LZ), 0);
	assert_int_equal(got, c->gc);
	assert_true(x.size <= c->coord && y.size <= c->coord);
	memset(c->point, 0, sizeof(c->point));
	c->point[0] = 0x04;
	memcpy(c->point + 1 + c->coord - x.size, x.data, x.size);
	memcpy(c->point + 1 + 2 * c->coord - y.size, y.data, y.size);
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(priv);
}

static int
setup(void **state)
{
	size_t i;

	key_make(&k_rsa, 0, GNUTLS_PK_RSA, 2048);
	key_make(&k_p256, 1, GNUTLS_PK_ECDSA, 256);
	key_make(&k_p384, 2, GNUTLS_PK_ECDSA, 384);
	key_make(&k_ed, 3, GNUTLS_PK_EDDSA_ED25519, 256);
	for (i = 0; i < NCURVES; i++)
		curve_point(&curves[i]);
	return 0;
}

/* policy_sign_check() for a key loaded with flags; *why_out its reason. */
static int
check_why(const struct ipc_key_info *k, uint32_t flags, uint32_t algo,
    uint32_t form, const uint8_t *data, size_t len, const char **why_out)
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
	r = policy_sign_check(k, flags, &req, &why);
	assert_non_null(why);	/* every answer has a reason to log */
	if (why_out != NULL)
		*why_out = why;
	return r;
}

static int
check_f(const struct ipc_key_info *k, uint32_t flags, uint32_t algo,
    uint32_t form, const uint8_t *data, size_t len)
{
	return check_why(k, flags, algo, form, data, len, NULL);
}

static int
check(const struct ipc_key_info *k, uint32_t algo, uint32_t form,
    const uint8_t *data, size_t len)
{
	return check_f(k, F_ALL, algo, form, data, len);
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

/*
 * Randoms and ServerECDHParams.  For a NIST group the point is that
 * curve's real one (as long as point_len fits it), else filler bytes.
 */
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
	for (i = 0; i < NCURVES; i++)
		if (curves[i].group == group)
			memcpy(p + 68, curves[i].point, point_len <
			    1 + 2 * curves[i].coord ? point_len :
			    1 + 2 * curves[i].coord);
	return 68 + point_len;
}

static size_t
dh_field(uint8_t *p, const uint8_t *v, size_t len)
{
	p[0] = (uint8_t)(len >> 8);
	p[1] = (uint8_t)len;
	memcpy(p + 2, v, len);
	return 2 + len;
}

/* Randoms and ServerDHParams (p, g, Ys) from the given bytes. */
static size_t
ske_dh_of(uint8_t *p, const uint8_t *prime, size_t plen, const uint8_t *g,
    size_t glen, const uint8_t *y, size_t ylen)
{
	size_t off = 64;

	assert_true(64 + 6 + plen + glen + ylen <= SKE_MAX);
	memset(p, 0x11, 64);
	off += dh_field(p + off, prime, plen);
	off += dh_field(p + off, g, glen);
	off += dh_field(p + off, y, ylen);
	return off;
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
	assert_int_equal(ipc_sigalg_list(GNUTLS_PK_DSA, 2048,
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
	assert_true(policy_is_tls13_cv(b, policy_tls13_cv_make(b, b + 200,
	    32)) && policy_tls13_cv_make(b, b + 200, 33) == 0);
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
	/* ECDHE needs no flag: a TLS 1.3-only key never sees it, harmless. */
	assert_int_equal(check_f(&k_ed, 0, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 23, 65)), 0);
	assert_true(policy_is_tls12_ske(b, ske_ecdh(b, 29, 32), 0));
}

static void
test_tls12_ske_refused(void **state)
{
	static const uint8_t two[] = { 2 };
	uint8_t b[2048], fill[512];
	size_t n;

	/* Point size not the group's. */
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 29, 31)), -EPERM);
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, ske_ecdh(b, 23, 33)), -EPERM);
	/* Compressed NIST point (the real X, the wrong form). */
	n = ske_ecdh(b, 23, 65);
	b[68] = 0x02;
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA256,
	    IPC_SIGN_CONTENT, b, n), -EPERM);
	n = ske_ecdh(b, 23, 33);
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
	/*
	 * A DH p that is no RFC 7919 group, even with the flag: any 2048- or
	 * 4096-bit one was enough before.  test_dh_needs_flag_and_rfc7919
	 * has the rest of the DH shapes.
	 */
	memset(fill, 0xff, sizeof(fill));
	assert_int_equal(check(&k_rsa, GNUTLS_SIGN_RSA_SHA512, IPC_SIGN_CONTENT,
	    b, ske_dh_of(b, fill, 256, two, 1, fill, 256)), -EPERM);
	fill[0] = 0x80;
	assert_false(policy_is_tls12_ske(b, ske_dh_of(b, fill, 512, two, 1,
	    fill, 510), F_ALL));
}

/*
 * Digests by family: refused for a key loaded without
 * IPC_KEY_F_ALLOW_DIGEST (a TLS 1.3-only frontend), signed with it.
 */
static void
test_digest_needs_flag(void **state)
{
	static const struct {
		const struct ipc_key_info	*k;
		uint32_t			algo;
		const uint8_t			*prefix;	/* DigestInfo */
		size_t				len;
	} d[] = {
		{ &k_p256, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, NULL, 32 },
		{ &k_p256, GNUTLS_SIGN_ECDSA_SHA384, NULL, 48 },
		{ &k_p384, GNUTLS_SIGN_ECDSA_SECP384R1_SHA384, NULL, 48 },
		{ &k_p384, GNUTLS_SIGN_ECDSA_SHA512, NULL, 64 },
		{ &k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, NULL, 32 },
		{ &k_rsa, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, NULL, 64 },
		{ &k_rsa, GNUTLS_SIGN_RSA_RAW, di_sha256, 19 + 32 },
		{ &k_rsa, GNUTLS_SIGN_RSA_RAW, di_sha512, 19 + 64 },
	};
	uint8_t b[256];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		memset(b, 0x42, sizeof(b));
		if (d[i].prefix != NULL)
			memcpy(b, d[i].prefix, 19);
		assert_int_equal(check_why(d[i].k, 0, d[i].algo,
		    IPC_SIGN_DIGEST, b, d[i].len, &why), -EPERM);
		assert_non_null(strstr(why, "digest signing is not enabled"));
		assert_int_equal(check_f(d[i].k, IPC_KEY_F_ALLOW_DHE |
		    IPC_KEY_F_ALLOW_DECRYPT, d[i].algo, IPC_SIGN_DIGEST, b,
		    d[i].len), -EPERM);
		assert_int_equal(check_f(d[i].k, IPC_KEY_F_ALLOW_DIGEST,
		    d[i].algo, IPC_SIGN_DIGEST, b, d[i].len), 0);
	}
	/* The same keys still sign TLS 1.3 content without the flag. */
	assert_int_equal(check_f(&k_p256, 0, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	    IPC_SIGN_CONTENT, b, cv(b, 32)), 0);
	assert_int_equal(check_f(&k_rsa, 0, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
	    IPC_SIGN_CONTENT, b, cv(b, 48)), 0);
	/* EdDSA never takes a digest, flag or not. */
	assert_int_equal(check_f(&k_ed, IPC_KEY_F_ALLOW_DIGEST,
	    GNUTLS_SIGN_EDDSA_ED25519, IPC_SIGN_DIGEST, b, 32), -EPERM);
}

/* The Ed25519 key, loaded with flags, over b. */
static int
ed_check(uint32_t flags, const uint8_t *b, size_t n)
{
	return check_f(&k_ed, flags, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n);
}

/* Each NIST curve: its real point passes, points off the curve do not. */
static void
test_ecdhe_on_curve(void **state)
{
	uint8_t b[256];
	const char *why;
	size_t i, n, plen;

	for (i = 0; i < NCURVES; i++) {
		plen = 1 + 2 * curves[i].coord;
		n = ske_ecdh(b, curves[i].group, (uint8_t)plen);
		assert_int_equal(ed_check(0, b, n), 0);
		/* One bit of Y flipped, then one of X. */
		b[n - 1] ^= 0x01;
		assert_int_equal(check_why(&k_ed, F_ALL,
		    GNUTLS_SIGN_EDDSA_ED25519, IPC_SIGN_CONTENT, b, n, &why),
		    -EPERM);
		assert_non_null(strstr(why, "not on its curve"));
		b[n - 1] ^= 0x01;
		b[69] ^= 0x80;
		assert_int_equal(ed_check(F_ALL, b, n), -EPERM);
		/* X >= p (all ones is above each of these primes), (0, 0). */
		n = ske_ecdh(b, curves[i].group, (uint8_t)plen);
		memset(b + 69, 0xff, curves[i].coord);
		assert_int_equal(ed_check(F_ALL, b, n), -EPERM);
		memset(b + 69, 0, plen - 1);
		assert_int_equal(ed_check(F_ALL, b, n), -EPERM);
		/* Filler coordinates, as any bytes of the right size were. */
		memset(b + 69, 0x07, plen - 1);
		assert_int_equal(ed_check(F_ALL, b, n), -EPERM);
		/* Another curve's point under this group: wrong size. */
		n = ske_ecdh(b, curves[(i + 1) % NCURVES].group, (uint8_t)plen);
		assert_int_equal(ed_check(F_ALL, b, n), -EPERM);
	}
}

/* p - d for a big-endian p of len bytes (d small, p > d). */
static void
be_sub(uint8_t *out, const uint8_t *p, size_t len, unsigned d)
{
	size_t i;

	memcpy(out, p, len);
	for (i = len; i-- > 0 && d > 0;) {
		unsigned v = out[i];

		out[i] = (uint8_t)(v - d);
		d = v < d ? 1 : 0;
	}
}

/* The Ed25519 key, loaded with flags, over randoms || (p, g, Ys). */
static int
dh_check(uint32_t flags, const uint8_t *p, size_t plen, const uint8_t *g,
    size_t glen, const uint8_t *y, size_t ylen, const char *why_has)
{
	static uint8_t b[SKE_MAX];
	const char *why;
	size_t n = ske_dh_of(b, p, plen, g, glen, y, ylen);
	int r;

	r = check_why(&k_ed, flags, GNUTLS_SIGN_EDDSA_ED25519,
	    IPC_SIGN_CONTENT, b, n, &why);
	if (why_has != NULL)
		assert_non_null(strstr(why, why_has));
	assert_int_equal(policy_is_tls12_ske(b, n, flags), r == 0);
	return r;
}

/*
 * DH-shaped content: refused without IPC_KEY_F_ALLOW_DHE; with it, each
 * RFC 7919 group with g = 2 and Ys in [2, p-2], nothing else.
 */
static void
test_dh_needs_flag_and_rfc7919(void **state)
{
	static const uint8_t two[] = { 2 }, five[] = { 5 }, g02[] = { 0, 2 },
	    one[] = { 1 }, zero[] = { 0 };
	static uint8_t b[SKE_MAX], p[1100], y[1100];
	const uint32_t dhe = IPC_KEY_F_ALLOW_DHE;
	const uint8_t *gp;
	size_t i, n, pl;

	for (i = 0; i < NDH; i++) {
		gp = dh_primes[i]->data;
		pl = dh_primes[i]->size;
		/* Ys just under p, 2 and a short one, as handshakes send. */
		be_sub(y, gp, pl, 2);
		assert_int_equal(dh_check(IPC_KEY_F_ALLOW_DIGEST, gp, pl, two,
		    1, y, pl, "DHE is not enabled"), -EPERM);
		assert_int_equal(dh_check(0, gp, pl, two, 1, two, 1, NULL),
		    -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, pl, NULL), 0);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, two, 1, NULL),
		    0);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, pl - 1, NULL),
		    0);
		n = ske_dh_of(b, gp, pl, two, 1, y, pl);
		assert_int_equal(check_f(&k_rsa, F_ALL, GNUTLS_SIGN_RSA_SHA256,
		    IPC_SIGN_CONTENT, b, n), 0);

		/* Near misses of p: p - 2, a middle bit, a byte less, 0-led. */
		be_sub(p, gp, pl, 2);
		assert_int_equal(dh_check(dhe, p, pl, two, 1, two, 1,
		    "RFC 7919"), -EPERM);
		memcpy(p, gp, pl);
		p[pl / 2] ^= 0x10;
		assert_int_equal(dh_check(dhe, p, pl, two, 1, two, 1,
		    "RFC 7919"), -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl - 1, two, 1, two, 1,
		    "RFC 7919"), -EPERM);
		p[0] = 0;
		memcpy(p + 1, gp, pl);
		assert_int_equal(dh_check(dhe, p, pl + 1, two, 1, two, 1,
		    "RFC 7919"), -EPERM);

		/* Ys or g empty, g != 2, or 2 not minimally encoded. */
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, 0, NULL),
		    -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl, two, 0, two, 1, NULL),
		    -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl, five, 1, two, 1,
		    "generator"), -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl, g02, 2, two, 1,
		    "generator"), -EPERM);

		/* Ys outside [2, p-2]: 0, 1, p-1, p, longer than p, 0-led. */
		for (n = 0; n < 2; n++)
			assert_int_equal(dh_check(dhe, gp, pl, two, 1,
			    n ? one : zero, 1, "[2, p-2]"), -EPERM);
		be_sub(y, gp, pl, 1);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, pl,
		    "[2, p-2]"), -EPERM);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, gp, pl,
		    "[2, p-2]"), -EPERM);
		y[0] = 1;
		memset(y + 1, 0, pl);
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, pl + 1,
		    "[2, p-2]"), -EPERM);
		y[0] = 0;
		y[1] = 2;
		assert_int_equal(dh_check(dhe, gp, pl, two, 1, y, 2,
		    "[2, p-2]"), -EPERM);

		/* A byte after the params, or one short. */
		n = ske_dh_of(b, gp, pl, two, 1, two, 1);
		b[n] = 0;
		assert_int_equal(check_f(&k_ed, dhe, GNUTLS_SIGN_EDDSA_ED25519,
		    IPC_SIGN_CONTENT, b, n + 1), -EPERM);
		assert_int_equal(check_f(&k_ed, dhe, GNUTLS_SIGN_EDDSA_ED25519,
		    IPC_SIGN_CONTENT, b, n - 1), -EPERM);
	}
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
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -ENOENT);
	req.key_id = IPC_MAX_KEYS + 3;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -ENOENT);
	/* Malformed: bad form, no data, too much data, flags. */
	req.key_id = k_ed.key_id;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), 0);
	req.form = 7;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -EBADMSG);
	req.form = IPC_SIGN_CONTENT;
	req.data_len = 0;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -EBADMSG);
	req.data_len = IPC_MAX_SIGN_DATA + 1;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -EBADMSG);
	req.data_len = n;
	req.flags = 1;
	assert_int_equal(policy_sign_check(&k_ed, F_ALL, &req, NULL), -EBADMSG);
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
		cmocka_unit_test(test_digest_needs_flag),
		cmocka_unit_test(test_ecdhe_on_curve),
		cmocka_unit_test(test_dh_needs_flag_and_rfc7919),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_digests),
		cmocka_unit_test(test_rsa_raw),
		cmocka_unit_test(test_wrong_algo_or_key),
		cmocka_unit_test(test_decrypt_policy),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
