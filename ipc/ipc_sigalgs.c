/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipc_sigalgs.c -- the table ipc_sigalgs.h describes. */
#include "config.h"

#include <gnutls/gnutls.h>

#include "ipc_codec.h"
#include "ipc_sigalgs.h"

const struct ipc_sigalg ipc_sigalgs[] = {
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
const size_t ipc_nsigalgs = sizeof(ipc_sigalgs) / sizeof(ipc_sigalgs[0]);

const struct ipc_sigalg *
ipc_sigalg_find(uint32_t sign)
{
	size_t i;

	for (i = 0; i < ipc_nsigalgs; i++)
		if (ipc_sigalgs[i].sign == sign)
			return &ipc_sigalgs[i];
	return NULL;
}

unsigned
ipc_sigalg_list(uint32_t pk, uint32_t bits, uint32_t *out, unsigned max)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < ipc_nsigalgs && n < max; i++) {
		if (ipc_sigalgs[i].pk != pk)
			continue;
		if (ipc_sigalgs[i].curve_bits != 0 &&
		    ipc_sigalgs[i].curve_bits != bits)
			continue;
		out[n++] = ipc_sigalgs[i].sign;
	}
	return n;
}
