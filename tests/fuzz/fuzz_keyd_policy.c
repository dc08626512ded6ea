/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_keyd_policy.c -- libFuzzer target for keyd's signing policy
 * (keyd/policy.c, policy_sign_check and policy_decrypt_check).
 *
 * Input: one selector byte, then an IPC_SIGN payload.  The selector's low
 * two bits pick the key (RSA-2048, ECDSA P-256, P-384, Ed25519).  If the
 * payload does not decode, the rest is used as raw data with an algorithm
 * and form taken from the selector, so the shape checks get fuzzed either
 * way.  Whatever the policy accepts must satisfy what policy.h promises;
 * a violation aborts.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

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
		fuzz_keys[i].nsign = policy_sign_algos(pk[i], bits[i],
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

/* What policy.h promises about anything policy_sign_check() accepts. */
static void
fuzz_check_accepted(const struct ipc_key_info *k, const struct ipc_sign_req *r)
{
	if (r->data_len == 0 || r->data_len > IPC_MAX_SIGN_DATA)
		abort();
	if (r->form == IPC_SIGN_CONTENT) {
		if (r->sign_algo == GNUTLS_SIGN_RSA_RAW ||
		    !fuzz_key_has(k, r->sign_algo))
			abort();
		if (!policy_is_tls13_cv(r->data, r->data_len) &&
		    !policy_is_tls12_ske(r->data, r->data_len))
			abort();
		if (policy_is_tls13_cv(r->data, r->data_len) &&
		    policy_is_tls12_ske(r->data, r->data_len))
			abort();	/* the shapes must never overlap */
		return;
	}
	if (r->form != IPC_SIGN_DIGEST || k->pk_algo == GNUTLS_PK_EDDSA_ED25519)
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_sign_req req;
	struct ipc_decrypt_req dreq;
	const struct ipc_key_info *k;
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
	for (i = 0; i < 4; i++) {
		k = &fuzz_keys[(sel + i) & 3];
		req.key_id = k->key_id;
		if (policy_sign_check(k, &req, NULL) == 0)
			fuzz_check_accepted(k, &req);
	}
	req.key_id = 0;
	if (policy_sign_check(NULL, &req, NULL) != -ENOENT)
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
