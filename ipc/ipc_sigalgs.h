/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc_sigalgs.h -- the signature algorithms an IPC_SIGN request may name:
 * what keyd signs for each kind of key, and nothing else.
 *
 * keyd's policy (keyd/policy.c) checks every request against this table;
 * keyd lists a loaded key's entries to the workers (ipc_key_info), whose
 * key tells GnuTLS exactly those (daemon/worker/xkey.c); and `moatd -t`
 * warns about a priority that enables others for a frontend's key
 * (daemon/conf_check.c).  One table, so the three cannot disagree.
 * SHA-1 and SHA-224 are absent on purpose: a signature over them is
 * forgeable or too weak for the keys moat guards.
 */
#ifndef MOAT_IPC_SIGALGS_H
#define MOAT_IPC_SIGALGS_H

#include <stddef.h>
#include <stdint.h>

struct ipc_sigalg {
	uint32_t	sign;		/* gnutls_sign_algorithm_t */
	uint32_t	pk;		/* gnutls_pk_algorithm_t of the key */
	int		stat;		/* enum ipc_sign_stat */
	unsigned	hash_len;	/* digest size; 0 = signs content (EdDSA) */
	unsigned	curve_bits;	/* ECDSA: only this curve; 0 = any */
	int		tls13;		/* allowed in a TLS 1.3 CertificateVerify */
};

extern const struct ipc_sigalg ipc_sigalgs[];
extern const size_t ipc_nsigalgs;

const struct ipc_sigalg *ipc_sigalg_find(uint32_t sign);
/*
 * The sign algorithms a key can do in TLS 1.2 and 1.3, in preference
 * order, into out[max]; their number.  bits is the modulus size for RSA
 * and the curve size for ECDSA.
 */
unsigned ipc_sigalg_list(uint32_t pk, uint32_t bits, uint32_t *out,
	    unsigned max);

#endif
