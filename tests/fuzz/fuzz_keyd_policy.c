/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_keyd_policy.c -- libFuzzer target for keyd's signing policy
 * (keyd/policy.c, policy_sign_check and policy_decrypt_check).
 *
 * Input: one selector byte, then an IPC_SIGN payload.  The selector's low
 * two bits pick the key that goes first (RSA-2048, ECDSA P-256, P-384,
 * Ed25519) and bit 7 the load flags it goes first with.  If the payload
 * does not decode, the rest is used as raw data with an algorithm and
 * form taken from the selector, so the shape checks get fuzzed either way.
 * The request is then checked against every key under every combination
 * of IPC_KEY_F_ALLOW_DIGEST and IPC_KEY_F_ALLOW_DHE, because what the
 * flags allow is the point: whatever the policy accepts must satisfy what
 * policy.h promises for those flags (checked here independently: the DH
 * groups against GnuTLS's exported primes, ECDHE points with GnuTLS's own
 * public-key validation), and a flag may only ever widen what is
 * accepted.  A violation aborts.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "ipc.h"
#include "ipc_codec.h"
#include "policy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t fuzz_algos[16] = {
	GNUTLS_SIGN_RSA_SHA256, GNUTLS_SIGN_RSA_SHA384, GNUTLS_SIGN_RSA_SHA512,
	GNUTLS_SIGN_RSA_RAW, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512,
	GNUTLS_SIGN_ECDSA_SHA256, GNUTLS_SIGN_ECDSA_SHA384,
	GNUTLS_SIGN_ECDSA_SHA512, GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	GNUTLS_SIGN_ECDSA_SECP384R1_SHA384, GNUTLS_SIGN_EDDSA_ED25519,
	GNUTLS_SIGN_RSA_SHA1, GNUTLS_SIGN_RSA_PSS_SHA256, 0,
};

/* The load flags the policy reads, in every combination; [0] = none. */
static const uint32_t fuzz_flags[4] = {
	0, IPC_KEY_F_ALLOW_DIGEST, IPC_KEY_F_ALLOW_DHE,
	IPC_KEY_F_ALLOW_DIGEST | IPC_KEY_F_ALLOW_DHE,
};

static const gnutls_datum_t *const fuzz_dh_primes[] = {
	&gnutls_ffdhe_2048_group_prime, &gnutls_ffdhe_3072_group_prime,
	&gnutls_ffdhe_4096_group_prime, &gnutls_ffdhe_6144_group_prime,
	&gnutls_ffdhe_8192_group_prime,
};

static struct ipc_key_info fuzz_keys[4];
static int fuzz_ready;

static void
fuzz_setup(void)
{
	static const uint32_t pk[4] = { GNUTLS_PK_RSA, GNUTLS_PK_ECDSA,
	    GNUTLS_PK_ECDSA, GNUTLS_PK_EDDSA_ED25519 };
	static const uint32_t bits[4] = { 2048, 256, 384, 256 };
	unsigned i;

	for (i = 0; i < 4; i++) {
		memset(&fuzz_keys[i], 0, sizeof(fuzz_keys[i]));
		fuzz_keys[i].key_id = i;
		fuzz_keys[i].pk_algo = pk[i];
		fuzz_keys[i].bits = bits[i];
		fuzz_keys[i].nsign = ipc_sigalg_list(pk[i], bits[i],
		    fuzz_keys[i].sign_algos, IPC_MAX_SIGN_ALGOS);
	}
	fuzz_ready = 1;
}

static int
fuzz_key_has(const struct ipc_key_info *k, uint32_t algo)
{
	uint32_t i;

	for (i = 0; i < k->nsign; i++)
		if (k->sign_algos[i] == algo)
			return 1;
	return 0;
}

/* Does GnuTLS itself take 0x04 || X || Y as a point of that NIST group? */
static int
fuzz_point_valid(uint16_t group, const uint8_t *pt, size_t len)
{
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x, y;
	int ok;

	curve = group == 23 ? GNUTLS_ECC_CURVE_SECP256R1 :
	    group == 24 ? GNUTLS_ECC_CURVE_SECP384R1 :
	    group == 25 ? GNUTLS_ECC_CURVE_SECP521R1 : GNUTLS_ECC_CURVE_INVALID;
	if (curve == GNUTLS_ECC_CURVE_INVALID || len < 3 || len % 2 == 0 ||
	    pt[0] != 0x04)
		return 0;
	x.data = (unsigned char *)pt + 1;
	x.size = (unsigned)(len - 1) / 2;
	y.data = x.data + x.size;
	y.size = x.size;
	if (gnutls_pubkey_init(&pub) < 0)
		abort();
	ok = gnutls_pubkey_import_ecc_raw(pub, curve, &x, &y) == 0 &&
	    gnutls_pubkey_verify_params(pub) == 0;
	gnutls_pubkey_deinit(pub);
	return ok;
}

/*
 * Accepted TLS 1.2 params (after the randoms) for a key with flags:
 * ServerECDHParams of an allowed group, NIST points valid; or, only with
 * IPC_KEY_F_ALLOW_DHE, an RFC 7919 p with g = 2.
 */
static void
fuzz_check_params(const uint8_t *p, size_t len, uint32_t flags)
{
	size_t i, plen;
	uint16_t group;

	if (len >= 4 && p[0] == 3 && len == 4u + p[3]) {
		group = (uint16_t)(p[1] << 8 | p[2]);
		if (group == 29 || group == 30)
			return;
		if (!fuzz_point_valid(group, p + 4, p[3]))
			abort();
		return;
	}
	if (!(flags & IPC_KEY_F_ALLOW_DHE) || len < 2)
		abort();
	plen = (size_t)p[0] << 8 | p[1];
	for (i = 0; i < sizeof(fuzz_dh_primes) / sizeof(fuzz_dh_primes[0]);
	    i++)
		if (plen == fuzz_dh_primes[i]->size && len >= 2 + plen &&
		    memcmp(p + 2, fuzz_dh_primes[i]->data, plen) == 0)
			break;
	if (i == sizeof(fuzz_dh_primes) / sizeof(fuzz_dh_primes[0]))
		abort();
	if (len < 2 + plen + 3 || p[2 + plen] != 0 || p[3 + plen] != 1 ||
	    p[4 + plen] != 2)
		abort();
}

/* What policy.h promises about anything policy_sign_check() accepts. */
static void
fuzz_check_accepted(const struct ipc_key_info *k, uint32_t flags,
    const struct ipc_sign_req *r)
{
	int cv, ske;

	if (r->data_len == 0 || r->data_len > IPC_MAX_SIGN_DATA)
		abort();
	if (r->form == IPC_SIGN_CONTENT) {
		if (r->sign_algo == GNUTLS_SIGN_RSA_RAW ||
		    !fuzz_key_has(k, r->sign_algo))
			abort();
		cv = policy_is_tls13_cv(r->data, r->data_len);
		ske = policy_is_tls12_ske(r->data, r->data_len, flags);
		if (!cv && !ske)
			abort();
		if (cv && policy_is_tls12_ske(r->data, r->data_len,
		    fuzz_flags[3]))
			abort();	/* the shapes must never overlap */
		if (ske)
			fuzz_check_params(r->data + 64, r->data_len - 64,
			    flags);
		return;
	}
	/* A digest: only for a key that serves TLS 1.2, never EdDSA. */
	if (r->form != IPC_SIGN_DIGEST ||
	    k->pk_algo == GNUTLS_PK_EDDSA_ED25519 ||
	    !(flags & IPC_KEY_F_ALLOW_DIGEST))
		abort();
	if (r->sign_algo == GNUTLS_SIGN_RSA_RAW) {
		if (k->pk_algo != GNUTLS_PK_RSA ||
		    policy_digestinfo_hash_len(r->data, r->data_len) == 0)
			abort();
		return;
	}
	if (!fuzz_key_has(k, r->sign_algo) ||
	    (r->data_len != 32 && r->data_len != 48 && r->data_len != 64))
		abort();
}

/* One key under every flag set: invariants, and flags only widen. */
static void
fuzz_one_key(const struct ipc_key_info *k, unsigned first,
    struct ipc_sign_req *req)
{
	int ok[4];
	unsigned i, f, g;

	req->key_id = k->key_id;
	for (i = 0; i < 4; i++) {
		f = (first + i) & 3;
		ok[f] = policy_sign_check(k, fuzz_flags[f], req, NULL) == 0;
		if (ok[f])
			fuzz_check_accepted(k, fuzz_flags[f], req);
	}
	for (f = 0; f < 4; f++)
		for (g = 0; g < 4; g++)
			if ((fuzz_flags[f] & fuzz_flags[g]) == fuzz_flags[f] &&
			    ok[f] && !ok[g])
				abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_sign_req req;
	struct ipc_decrypt_req dreq;
	uint8_t sel;
	unsigned i;

	if (!fuzz_ready)
		fuzz_setup();
	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	if (ipc_sign_decode(data, size, &req) < 0) {
		memset(&req, 0, sizeof(req));
		req.sign_algo = fuzz_algos[(sel >> 2) & 15];
		req.form = (sel & 0x40) ? IPC_SIGN_DIGEST : IPC_SIGN_CONTENT;
		req.data = data;
		req.data_len = size;
	}
	/* The same request against every key, so each family sees it. */
	for (i = 0; i < 4; i++)
		fuzz_one_key(&fuzz_keys[(sel + i) & 3], (sel & 0x80) ? 3 : 0,
		    &req);
	req.key_id = 0;
	if (policy_sign_check(NULL, fuzz_flags[3], &req, NULL) != -ENOENT)
		abort();

	memset(&dreq, 0, sizeof(dreq));
	dreq.key_id = 0;
	dreq.data = data;
	dreq.data_len = size;
	if (policy_decrypt_check(&fuzz_keys[0], IPC_KEY_F_ALLOW_DECRYPT, &dreq,
	    NULL) == 0 && size != 256)
		abort();
	if (policy_decrypt_check(&fuzz_keys[0], 0, &dreq, NULL) == 0)
		abort();
	return 0;
}
