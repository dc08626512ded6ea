/*
 * keystore.h -- the keys keyd holds, imported from file descriptors the
 * master opened (keyd never opens a file).
 *
 * The store is owned by keyd's main thread: only it loads, replaces and
 * looks up keys.  A signer thread works on a key through a reference taken
 * by the main thread, so a key replaced by a new IPC_KEY_LOAD stays alive
 * until the last operation on it is done, and is then wiped.
 */
#ifndef MOAT_KEYSTORE_H
#define MOAT_KEYSTORE_H

#include <stdatomic.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "ipc.h"

#define KEYSTORE_MAX_FILE	(1024u * 1024u)	/* key, cert or passphrase */

struct keystore_key {
	atomic_int		refs;
	gnutls_privkey_t	privkey;
	struct ipc_key_info	info;
	uint32_t		flags;		/* IPC_KEY_F_* it was loaded with */
};

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
void	keystore_key_ref(struct keystore_key *k);
void	keystore_key_unref(struct keystore_key *k);
void	keystore_clear(struct keystore *ks);

#endif
