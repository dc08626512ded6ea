/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy.c -- what keyd agrees to sign or decrypt.  Pure: it reads the
 * public description of a key and a request, never key material, and does
 * no I/O, so the unit test and the fuzz target link exactly this file.
 * policy.h explains what reaches keyd and why the policy is what it is;
 * the operations themselves are in keystore.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "ipc.h"
#include "policy.h"

/* One TLS signature algorithm keyd will use, and what it needs. */
struct policy_algo {
	uint32_t	sign;		/* gnutls_sign_algorithm_t */
	uint32_t	pk;		/* gnutls_pk_algorithm_t of the key */
	int		stat;		/* enum ipc_sign_stat */
	unsigned	hash_len;	/* digest size; 0 = signs content (EdDSA) */
	unsigned	curve_bits;	/* ECDSA: only this curve; 0 = any */
	int		tls13;		/* allowed in a TLS 1.3 CertificateVerify */
};

static const struct policy_algo policy_algos[] = {
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_PK_RSA, IPC_STAT_RSA_PSS, 32, 0, 1 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_PK_RSA, IPC_STAT_RSA_PSS, 48, 0, 1 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, GNUTLS_PK_RSA, IPC_STAT_RSA_PSS, 64, 0, 1 },
	{ GNUTLS_SIGN_RSA_SHA256, GNUTLS_PK_RSA, IPC_STAT_RSA_PKCS1, 32, 0, 0 },
	{ GNUTLS_SIGN_RSA_SHA384, GNUTLS_PK_RSA, IPC_STAT_RSA_PKCS1, 48, 0, 0 },
	{ GNUTLS_SIGN_RSA_SHA512, GNUTLS_PK_RSA, IPC_STAT_RSA_PKCS1, 64, 0, 0 },
	{ GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, GNUTLS_PK_ECDSA, IPC_STAT_ECDSA, 32, 256, 1 },
	{ GNUTLS_SIGN_ECDSA_SECP384R1_SHA384, GNUTLS_PK_ECDSA, IPC_STAT_ECDSA, 48, 384, 1 },
	{ GNUTLS_SIGN_ECDSA_SHA256, GNUTLS_PK_ECDSA, IPC_STAT_ECDSA, 32, 0, 0 },
	{ GNUTLS_SIGN_ECDSA_SHA384, GNUTLS_PK_ECDSA, IPC_STAT_ECDSA, 48, 0, 0 },
	{ GNUTLS_SIGN_ECDSA_SHA512, GNUTLS_PK_ECDSA, IPC_STAT_ECDSA, 64, 0, 0 },
	{ GNUTLS_SIGN_EDDSA_ED25519, GNUTLS_PK_EDDSA_ED25519, IPC_STAT_EDDSA, 0, 0, 1 },
};
#define POLICY_NALGOS	(sizeof(policy_algos) / sizeof(policy_algos[0]))

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

/* Named groups a TLS 1.2 ServerECDHParams may carry, and their point size. */
static const struct {
	uint16_t	group;
	uint8_t		point_len;
	uint8_t		uncompressed;	/* first point byte must be 0x04 */
} policy_groups[] = {
	{ 23, 65, 1 },		/* secp256r1 */
	{ 24, 97, 1 },		/* secp384r1 */
	{ 25, 133, 1 },		/* secp521r1 */
	{ 29, 32, 0 },		/* x25519 */
	{ 30, 56, 0 },		/* x448 */
};

#define TLS_RANDOMS		64u
#define DH_MIN_BITS		2048u
#define DH_MAX_BITS		8192u

static const struct policy_algo *
policy_algo_find(uint32_t sign)
{
	size_t i;

	for (i = 0; i < POLICY_NALGOS; i++)
		if (policy_algos[i].sign == sign)
			return &policy_algos[i];
	return NULL;
}

/*
 * The sign algorithms a key can do in TLS 1.2 and 1.3, in preference order.
 * bits is the modulus size for RSA and the curve size for ECDSA.
 */
unsigned
policy_sign_algos(uint32_t pk_algo, uint32_t bits, uint32_t *out, unsigned max)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < POLICY_NALGOS && n < max; i++) {
		if (policy_algos[i].pk != pk_algo)
			continue;
		if (policy_algos[i].curve_bits != 0 &&
		    policy_algos[i].curve_bits != bits)
			continue;
		out[n++] = policy_algos[i].sign;
	}
	return n;
}

int
policy_sign_stat(uint32_t sign_algo)
{
	const struct policy_algo *a;

	if (sign_algo == GNUTLS_SIGN_RSA_RAW)
		return IPC_STAT_RSA_PKCS1;
	if ((a = policy_algo_find(sign_algo)) == NULL)
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

/* ServerECDHParams: named_curve, a known group, a point of its exact size. */
static int
policy_ske_ecdh_ok(const uint8_t *p, size_t len)
{
	uint16_t group;
	size_t i;

	if (len < 4 || p[0] != 3)
		return 0;
	group = (uint16_t)(p[1] << 8 | p[2]);
	for (i = 0; i < sizeof(policy_groups) / sizeof(policy_groups[0]); i++) {
		if (policy_groups[i].group != group)
			continue;
		if (p[3] != policy_groups[i].point_len ||
		    len != 4u + policy_groups[i].point_len)
			return 0;
		return !policy_groups[i].uncompressed || p[4] == 0x04;
	}
	return 0;
}

/* One opaque<1..2^16-1> of ServerDHParams; advances *off. */
static int
policy_ske_dh_field(const uint8_t *p, size_t len, size_t *off, size_t *flen)
{
	size_t n;

	if (len - *off < 2)
		return 0;
	n = (size_t)p[*off] << 8 | p[*off + 1];
	if (n == 0 || len - *off - 2 < n)
		return 0;
	*flen = n;
	*off += 2 + n;
	return 1;
}

/* ServerDHParams: p (2048..8192 bits, no leading zero), g, Ys, then end. */
static int
policy_ske_dh_ok(const uint8_t *p, size_t len)
{
	size_t off = 0, plen, glen, ylen, pstart = 2, bits;
	uint8_t top;

	if (!policy_ske_dh_field(p, len, &off, &plen))
		return 0;
	if (p[pstart] == 0)
		return 0;
	top = p[pstart];
	bits = (plen - 1) * 8;
	while (top != 0) {
		bits++;
		top >>= 1;
	}
	if (bits < DH_MIN_BITS || bits > DH_MAX_BITS)
		return 0;
	if (!policy_ske_dh_field(p, len, &off, &glen) || glen > plen)
		return 0;
	if (!policy_ske_dh_field(p, len, &off, &ylen) || ylen > plen)
		return 0;
	return off == len;
}

/* client_random || server_random || ServerECDHParams or ServerDHParams. */
int
policy_is_tls12_ske(const uint8_t *p, size_t len)
{
	if (len <= TLS_RANDOMS)
		return 0;
	return policy_ske_ecdh_ok(p + TLS_RANDOMS, len - TLS_RANDOMS) ||
	    policy_ske_dh_ok(p + TLS_RANDOMS, len - TLS_RANDOMS);
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

/* RSA_RAW: a DigestInfo whose hash the key offers as RSA PKCS#1 v1.5. */
static int
policy_sign_check_rsa_raw(const struct ipc_key_info *key,
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
	hash_len = (unsigned)policy_digestinfo_hash_len(req->data,
	    req->data_len);
	if (hash_len == 0) {
		*why = "not a DigestInfo for SHA-256/384/512";
		return -EPERM;
	}
	for (i = 0; i < POLICY_NALGOS; i++)
		if (policy_algos[i].stat == IPC_STAT_RSA_PKCS1 &&
		    policy_algos[i].hash_len == hash_len &&
		    policy_key_has_algo(key, policy_algos[i].sign))
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
 * The policy.  Returns 0 if keyd may sign req with key, else a negative
 * errno and a static reason in *why.  Pure: no key material, no I/O.
 */
int
policy_sign_check(const struct ipc_key_info *key,
    const struct ipc_sign_req *req, const char **why)
{
	const struct policy_algo *a;
	const char *dummy;

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
		return policy_sign_check_rsa_raw(key, req, why);
	if ((a = policy_algo_find(req->sign_algo)) == NULL) {
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
		if (policy_is_tls12_ske(req->data, req->data_len))
			return 0;
		*why = "content is not a TLS 1.3 CertificateVerify or a "
		    "TLS 1.2 ServerKeyExchange";
		return -EPERM;
	case IPC_SIGN_DIGEST:
		if (a->hash_len == 0) {
			*why = "EdDSA signs content, never a digest";
			return -EPERM;
		}
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
