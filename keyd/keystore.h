/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keystore.h -- the keys keyd holds, imported from file descriptors the
 * master opened (keyd never opens a file), and the only two operations
 * done with them.
 *
 * The store is owned by keyd's main thread: only it loads, replaces and
 * looks up keys.  A signer thread works on a key through a reference taken
 * by the main thread, so a key replaced by a new IPC_KEY_LOAD or dropped by
 * IPC_KEY_DROP stays alive until the last operation on it is done, and is
 * then wiped.
 *
 * struct keystore_key is opaque: the private key never leaves keystore.c.
 * Other files see a key's public description (keystore_key_info) and ask
 * keystore_sign() or keystore_decrypt() for what policy.c allowed.
 */
#ifndef MOAT_KEYSTORE_H
#define MOAT_KEYSTORE_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "ipc.h"

#define KEYSTORE_MAX_FILE	(1024u * 1024u)	/* key, cert or passphrase */

struct keystore_key;

struct keystore {
	struct keystore_key	*keys[IPC_MAX_KEYS];
	unsigned		count;
};

/* keystore.c */
int	keystore_load(struct keystore *ks, const struct ipc_key_load *kl,
	    const int *fds, unsigned nfds, struct ipc_key_loaded *out);
struct keystore_key *keystore_get(struct keystore *ks, uint32_t key_id);
unsigned keystore_list(const struct keystore *ks, struct ipc_key_info *out,
	    unsigned max);
int	keystore_drop(struct keystore *ks, uint32_t key_id);
void	keystore_key_ref(struct keystore_key *k);
void	keystore_key_unref(struct keystore_key *k);
void	keystore_clear(struct keystore *ks);
const struct ipc_key_info *keystore_key_info(const struct keystore_key *k);
uint32_t keystore_key_flags(const struct keystore_key *k);
double	keystore_key_op_seconds(const struct keystore_key *k);
unsigned keystore_key_parallel(const struct keystore_key *k,
	    unsigned threads);
int	keystore_sign(struct keystore_key *k, const struct ipc_sign_req *req,
	    gnutls_datum_t *sig);
int	keystore_decrypt(struct keystore_key *k,
	    const struct ipc_decrypt_req *req, gnutls_datum_t *plain);

#endif
