/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy.c -- what keyd agrees to sign or decrypt.  Pure: it reads the
 * public description of a key, its load flags and a request, never key
 * material, and does no I/O (nettle's point arithmetic and GnuTLS's
 * exported RFC 7919 primes are all it uses), so the unit test and the
 * fuzz target link exactly this file.
 * policy.h explains what reaches keyd and why the policy is what it is;
 * the operations themselves are in keystore.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <gmp.h>
#include <gnutls/gnutls.h>
#include <nettle/ecc.h>
#include <nettle/ecc-curve.h>

#include "ipc.h"
#include "ipc_sigalgs.h"
#include "policy.h"

static const char policy_tls13_context[] = "TLS 1.3, server CertificateVerify";

/*
 * DER DigestInfo prefixes for SHA-256/384/512 with NULL parameters, as
 * GnuTLS's encode_ber_digest_info() writes them; the digest follows.
 */
#define DIGESTINFO_PREFIX	19u
static const struct {
	uint8_t		prefix[DIGESTINFO_PREFIX];
	unsigned	hash_len;
} policy_digestinfo[] = {
	{ { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 }, 32 },
	{ { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 }, 48 },
	{ { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	    0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 }, 64 },
};
#define POLICY_NDIGESTINFO \
	(sizeof(policy_digestinfo) / sizeof(policy_digestinfo[0]))

/*
 * Named groups a TLS 1.2 ServerECDHParams may carry and their point size.
 * A NIST point is 0x04 || X || Y (GnuTLS writes no other form) and must
 * lie on its curve: nettle checks that for the cost of a few
 * multiplications, and it leaves a compromised worker no free bytes in
 * the point.  An x25519/x448 share is any string of its exact size (every
 * one is a valid u-coordinate), so only its length is checked.
 */
static const struct {
	uint16_t	group;
	uint8_t		point_len;
	const struct ecc_curve *(*curve)(void);	/* NIST: on-curve check */
} policy_groups[] = {
	{ 23, 65, nettle_get_secp_256r1 },	/* secp256r1 */
	{ 24, 97, nettle_get_secp_384r1 },	/* secp384r1 */
	{ 25, 133, nettle_get_secp_521r1 },	/* secp521r1 */
	{ 29, 32, NULL },			/* x25519 */
	{ 30, 56, NULL },			/* x448 */
};
#define POLICY_NGROUPS	(sizeof(policy_groups) / sizeof(policy_groups[0]))

/*
 * The finite-field groups of RFC 7919, as GnuTLS exports them (big-endian,
 * no leading zero, generator 2).  GnuTLS 3.7 uses one of these for every
 * TLS 1.2 DHE handshake unless the server set its own parameters, which
 * moat never does; so a ServerDHParams with any other p did not come
 * from a handshake.
 */
static const struct {
	const gnutls_datum_t	*prime;
	const gnutls_datum_t	*generator;
} policy_dh_groups[] = {
	{ &gnutls_ffdhe_2048_group_prime, &gnutls_ffdhe_2048_group_generator },
	{ &gnutls_ffdhe_3072_group_prime, &gnutls_ffdhe_3072_group_generator },
	{ &gnutls_ffdhe_4096_group_prime, &gnutls_ffdhe_4096_group_generator },
	{ &gnutls_ffdhe_6144_group_prime, &gnutls_ffdhe_6144_group_generator },
	{ &gnutls_ffdhe_8192_group_prime, &gnutls_ffdhe_8192_group_generator },
};
#define POLICY_NDH_GROUPS \
	(sizeof(policy_dh_groups) / sizeof(policy_dh_groups[0]))
#define POLICY_DH_MAX_BYTES	1024u	/* ffdhe8192 */

#define TLS_RANDOMS		64u
#define TLS_CURVE_NAMED		3u	/* ECCurveType named_curve */

int
policy_sign_stat(uint32_t sign_algo)
{
	const struct ipc_sigalg *a;

	if (sign_algo == GNUTLS_SIGN_RSA_RAW)
		return IPC_STAT_RSA_PKCS1;
	if ((a = ipc_sigalg_find(sign_algo)) == NULL)
		return -EINVAL;
	return a->stat;
}

static int
policy_key_has_algo(const struct ipc_key_info *key, uint32_t sign)
{
	uint32_t i;

	for (i = 0; i < key->nsign && i < IPC_MAX_SIGN_ALGOS; i++)
		if (key->sign_algos[i] == sign)
			return 1;
	return 0;
}

/* 64 x 0x20, the server context, 0x00, then a SHA-256 or SHA-384 hash. */
int
policy_is_tls13_cv(const uint8_t *p, size_t len)
{
	size_t i;

	if (len != POLICY_TLS13_CV_PREFIX + 32 &&
	    len != POLICY_TLS13_CV_PREFIX + 48)
		return 0;
	for (i = 0; i < 64; i++)
		if (p[i] != 0x20)
			return 0;
	if (memcmp(p + 64, policy_tls13_context,
	    sizeof(policy_tls13_context) - 1) != 0)
		return 0;
	return p[POLICY_TLS13_CV_PREFIX - 1] == 0x00;
}

/*
 * Write a TLS 1.3 server CertificateVerify content over hash (32 or 48
 * bytes) into p, which has room for POLICY_TLS13_CV_PREFIX + 48; returns
 * its length, or 0 for another hash size.  keystore.c signs such dummy
 * content to time a key (never sent anywhere).
 */
size_t
policy_tls13_cv_make(uint8_t *p, const uint8_t *hash, size_t hash_len)
{
	if (hash_len != 32 && hash_len != 48)
		return 0;
	memset(p, 0x20, 64);
	memcpy(p + 64, policy_tls13_context, sizeof(policy_tls13_context));
	memcpy(p + POLICY_TLS13_CV_PREFIX, hash, hash_len);
	return POLICY_TLS13_CV_PREFIX + hash_len;
}

/*
 * Is 0x04 || X || Y (coordinates of coord_len bytes each, big-endian) a
 * point of curve?  ecc_point_set() also refuses coordinates >= p, and the
 * point at infinity has no such encoding.
 */
static int
policy_ec_on_curve(const struct ecc_curve *curve, const uint8_t *xy,
    size_t coord_len)
{
	struct ecc_point pt;
	mpz_t x, y;
	int ok;

	mpz_init(x);
	mpz_init(y);
	mpz_import(x, coord_len, 1, 1, 0, 0, xy);
	mpz_import(y, coord_len, 1, 1, 0, 0, xy + coord_len);
	ecc_point_init(&pt, curve);
	ok = ecc_point_set(&pt, x, y);
	ecc_point_clear(&pt);
	mpz_clear(x);
	mpz_clear(y);
	return ok;
}

/*
 * ServerECDHParams: named_curve, an allowed group, a point of its exact
 * size, for NIST curves uncompressed and on the curve.  NULL if it is one,
 * else why not (*ecdh says whether it had the ECDH shape at all).
 */
static const char *
policy_ske_ecdh_why(const uint8_t *p, size_t len, int *ecdh)
{
	uint16_t group;
	size_t i, coord;

	/*
	 * The shape alone: curve type, group, one opaque<1..2^8-1>, end.  It
	 * is at most 259 bytes, and ServerDHParams whose p length starts with
	 * 0x03 (ffdhe6144's does) is at least 768: the two never overlap.
	 */
	*ecdh = len >= 4 && p[0] == TLS_CURVE_NAMED && len == 4u + p[3];
	if (!*ecdh)
		return "not ServerECDHParams";
	group = (uint16_t)(p[1] << 8 | p[2]);
	for (i = 0; i < POLICY_NGROUPS; i++) {
		if (policy_groups[i].group != group)
			continue;
		if (p[3] != policy_groups[i].point_len)
			return "ECDHE share is not the size of its group's";
		if (policy_groups[i].curve == NULL)
			return NULL;
		if (p[4] != 0x04)
			return "ECDHE point is not uncompressed";
		coord = (policy_groups[i].point_len - 1u) / 2u;
		if (!policy_ec_on_curve(policy_groups[i].curve(), p + 5, coord))
			return "ECDHE point is not on its curve";
		return NULL;
	}
	return "ECDHE group is not one keyd allows";
}

/* One opaque<1..2^16-1> of ServerDHParams; advances *off. */
static int
policy_ske_dh_field(const uint8_t *p, size_t len, size_t *off,
    const uint8_t **f, size_t *flen)
{
	size_t n;

	if (len - *off < 2)
		return 0;
	n = (size_t)p[*off] << 8 | p[*off + 1];
	if (n == 0 || len - *off - 2 < n)
		return 0;
	*f = p + *off + 2;
	*flen = n;
	*off += 2 + n;
	return 1;
}

/*
 * 2 <= y <= p - 2 for big-endian y (ylen bytes, no leading zero) and p
 * (plen bytes, odd, no leading zero): y = 1 and y = p - 1 are the values
 * of a small subgroup, and y >= p is not a residue at all.
 */
static int
policy_dh_y_in_range(const uint8_t *y, size_t ylen, const uint8_t *p,
    size_t plen)
{
	uint8_t pm2[POLICY_DH_MAX_BYTES];
	size_t i;
	unsigned borrow = 2;

	if (ylen == 0 || y[0] == 0 || plen > sizeof(pm2) || plen == 0)
		return 0;
	if (ylen == 1 && y[0] < 2)
		return 0;
	if (ylen != plen)
		return ylen < plen;
	/* p - 2, byte by byte from the end. */
	for (i = plen; i-- > 0;) {
		pm2[i] = (uint8_t)(p[i] - borrow);
		borrow = p[i] < borrow ? 1 : 0;
	}
	return memcmp(y, pm2, plen) <= 0;
}

/*
 * ServerDHParams: p, g, Ys, each a non-empty opaque<1..2^16-1>, then
 * nothing.  NULL if the params are what a handshake sends for a key that
 * may do DHE (flags), else why not (*dh says whether they had the DH
 * shape at all).
 */
static const char *
policy_ske_dh_why(const uint8_t *p, size_t len, uint32_t key_flags, int *dh)
{
	const uint8_t *fp, *fg, *fy;
	size_t off = 0, plen, glen, ylen, i;

	*dh = 0;
	if (!policy_ske_dh_field(p, len, &off, &fp, &plen) ||
	    !policy_ske_dh_field(p, len, &off, &fg, &glen) ||
	    !policy_ske_dh_field(p, len, &off, &fy, &ylen) || off != len)
		return "not ServerDHParams";
	*dh = 1;
	if (!(key_flags & IPC_KEY_F_ALLOW_DHE))
		return "DH key exchange content, but DHE is not enabled for "
		    "this key";
	for (i = 0; i < POLICY_NDH_GROUPS; i++)
		if (plen == policy_dh_groups[i].prime->size &&
		    memcmp(fp, policy_dh_groups[i].prime->data, plen) == 0)
			break;
	if (i == POLICY_NDH_GROUPS)
		return "DH prime is not one of the RFC 7919 groups";
	if (glen != policy_dh_groups[i].generator->size ||
	    memcmp(fg, policy_dh_groups[i].generator->data, glen) != 0)
		return "DH generator is not the group's (2)";
	if (!policy_dh_y_in_range(fy, ylen, fp, plen))
		return "DH public value is not in [2, p-2], minimally encoded";
	return NULL;
}

/*
 * client_random || server_random || ServerECDHParams or ServerDHParams,
 * as policy.h describes.  NULL if content is one keyd may sign for a key
 * loaded with key_flags, else why not.
 */
static const char *
policy_ske_why(const uint8_t *p, size_t len, uint32_t key_flags)
{
	const char *why;
	int shape;

	if (len > TLS_RANDOMS) {
		p += TLS_RANDOMS;
		len -= TLS_RANDOMS;
		/* The more specific reason of the shape the params have. */
		if ((why = policy_ske_ecdh_why(p, len, &shape)) == NULL ||
		    shape)
			return why;
		if ((why = policy_ske_dh_why(p, len, key_flags, &shape)) ==
		    NULL || shape)
			return why;
	}
	return "content is not a TLS 1.3 CertificateVerify or a TLS 1.2 "
	    "ServerKeyExchange";
}

int
policy_is_tls12_ske(const uint8_t *p, size_t len, uint32_t key_flags)
{
	return policy_ske_why(p, len, key_flags) == NULL;
}

/* The hash size of a well-formed DigestInfo, or 0. */
int
policy_digestinfo_hash_len(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < POLICY_NDIGESTINFO; i++) {
		if (len != DIGESTINFO_PREFIX + policy_digestinfo[i].hash_len)
			continue;
		if (memcmp(p, policy_digestinfo[i].prefix,
		    DIGESTINFO_PREFIX) == 0)
			return (int)policy_digestinfo[i].hash_len;
	}
	return 0;
}

/*
 * A bare digest can be anything's: keyd signs one only for a key the
 * master loaded with IPC_KEY_F_ALLOW_DIGEST, i.e. one that serves TLS 1.2,
 * where GnuTLS hands an RSA or ECDSA key nothing else (policy.h).
 */
static int
policy_digest_allowed(uint32_t key_flags, const char **why)
{
	if (key_flags & IPC_KEY_F_ALLOW_DIGEST)
		return 1;
	*why = "digest signing is not enabled for this key (it serves no "
	    "TLS 1.2): keyd signs only content it can check";
	return 0;
}

/* RSA_RAW: a DigestInfo whose hash the key offers as RSA PKCS#1 v1.5. */
static int
policy_sign_check_rsa_raw(const struct ipc_key_info *key, uint32_t key_flags,
    const struct ipc_sign_req *req, const char **why)
{
	unsigned hash_len;
	size_t i;

	if (key->pk_algo != GNUTLS_PK_RSA) {
		*why = "raw RSA requested for a key that is not RSA";
		return -EINVAL;
	}
	if (req->form != IPC_SIGN_DIGEST) {
		*why = "raw RSA signs a DigestInfo, not content";
		return -EPERM;
	}
	if (!policy_digest_allowed(key_flags, why))
		return -EPERM;
	hash_len = (unsigned)policy_digestinfo_hash_len(req->data,
	    req->data_len);
	if (hash_len == 0) {
		*why = "not a DigestInfo for SHA-256/384/512";
		return -EPERM;
	}
	for (i = 0; i < ipc_nsigalgs; i++)
		if (ipc_sigalgs[i].stat == IPC_STAT_RSA_PKCS1 &&
		    ipc_sigalgs[i].hash_len == hash_len &&
		    policy_key_has_algo(key, ipc_sigalgs[i].sign))
			return 0;
	*why = "key does not offer RSA PKCS#1 with that hash";
	return -EINVAL;
}


/* The request names this key: a slot in range that holds it. */
static int
policy_key_is(const struct ipc_key_info *key, uint32_t key_id)
{
	return key != NULL && key_id < IPC_MAX_KEYS && key_id == key->key_id;
}

/*
 * The policy.  Returns 0 if keyd may sign req with key, which was loaded
 * with key_flags (IPC_KEY_F_*), else a negative errno and a static reason
 * in *why.  Pure: no key material, no I/O.
 */
int
policy_sign_check(const struct ipc_key_info *key, uint32_t key_flags,
    const struct ipc_sign_req *req, const char **why)
{
	const struct ipc_sigalg *a;
	const char *dummy, *ske;

	if (why == NULL)
		why = &dummy;
	*why = "ok";
	if (!policy_key_is(key, req->key_id)) {
		*why = "no such key";
		return -ENOENT;
	}
	if (req->data == NULL || req->data_len == 0 ||
	    req->data_len > IPC_MAX_SIGN_DATA || req->flags != 0) {
		*why = "malformed request";
		return -EBADMSG;
	}
	if (req->sign_algo == GNUTLS_SIGN_RSA_RAW)
		return policy_sign_check_rsa_raw(key, key_flags, req, why);
	if ((a = ipc_sigalg_find(req->sign_algo)) == NULL) {
		*why = "sign algorithm not supported";
		return -EINVAL;
	}
	if (a->pk != key->pk_algo ||
	    !policy_key_has_algo(key, req->sign_algo)) {
		*why = "sign algorithm not available for this key";
		return -EINVAL;
	}

	switch (req->form) {
	case IPC_SIGN_CONTENT:
		if (policy_is_tls13_cv(req->data, req->data_len)) {
			if (!a->tls13) {
				*why = "algorithm not allowed in TLS 1.3";
				return -EPERM;
			}
			return 0;
		}
		if ((ske = policy_ske_why(req->data, req->data_len,
		    key_flags)) == NULL)
			return 0;
		*why = ske;
		return -EPERM;
	case IPC_SIGN_DIGEST:
		if (a->hash_len == 0) {
			*why = "EdDSA signs content, never a digest";
			return -EPERM;
		}
		if (!policy_digest_allowed(key_flags, why))
			return -EPERM;
		if (a->stat == IPC_STAT_RSA_PKCS1) {
			*why = "RSA PKCS#1 digests come as RSA-RAW DigestInfo";
			return -EPERM;
		}
		if (req->data_len != a->hash_len) {
			*why = "digest size does not match the algorithm's hash";
			return -EPERM;
		}
		return 0;
	default:
		*why = "unknown request form";
		return -EBADMSG;
	}
}

/* Decrypt only where the frontend enabled it, and only modulus-sized input. */
int
policy_decrypt_check(const struct ipc_key_info *key, uint32_t key_flags,
    const struct ipc_decrypt_req *req, const char **why)
{
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = "ok";
	if (!policy_key_is(key, req->key_id)) {
		*why = "no such key";
		return -ENOENT;
	}
	if (req->data == NULL || req->data_len == 0 || req->flags != 0) {
		*why = "malformed request";
		return -EBADMSG;
	}
	if (key->pk_algo != GNUTLS_PK_RSA ||
	    !(key_flags & IPC_KEY_F_ALLOW_DECRYPT)) {
		*why = "decryption not enabled for this key";
		return -EPERM;
	}
	if (req->data_len != (key->bits + 7) / 8) {
		*why = "ciphertext size is not the modulus size";
		return -EPERM;
	}
	return 0;
}
