/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_pkcs11.h -- a PKCS#11 module in keyd: loaded before the sandbox,
 * and a root holding only the files it reads (keyd_pkcs11.c says why).
 */
#ifndef MOAT_KEYD_PKCS11_H
#define MOAT_KEYD_PKCS11_H

#include <stdatomic.h>
#include <stddef.h>

#include <gnutls/abstract.h>

#define KEYD_PKCS11_MAX_ALLOW	8	/* --pkcs11-allow(-write) paths */
#define KEYD_PKCS11_PATH_MAX	1024	/* bytes of one, incl. NUL */

/* A path the module may see in keyd's root. */
struct keyd_pkcs11_path {
	const char	*path;
	int		writable;	/* --pkcs11-allow-write */
};

/*
 * A token key's PIN (key-pin-file), kept for the key's life: GnuTLS logs in
 * again when the token drops the session.  asked: the token wanted it.
 * The owner (keystore.c) holds and wipes the bytes.
 */
struct keyd_pkcs11_pin {
	const char	*value;		/* NUL-terminated; NULL = none */
	size_t		len;
	atomic_int	asked;
};

/* keyd_pkcs11.c */
int	keyd_pkcs11_load(const char *module, char *err, size_t errlen);
int	keyd_pkcs11_root(const char *root,
	    const struct keyd_pkcs11_path *paths, unsigned npaths, char *err,
	    size_t errlen);
int	keyd_pkcs11_import(gnutls_privkey_t *out, const char *uri,
	    struct keyd_pkcs11_pin *pin, char *err, size_t errlen);
void	keyd_pkcs11_say(const char *module,
	    const struct keyd_pkcs11_path *paths, unsigned npaths);

#endif
