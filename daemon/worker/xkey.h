/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xkey.h -- a frontend's private key as the worker holds it: a
 * gnutls_privkey_import_ext4() key whose operations travel to keyd over
 * the worker's channel (kchan.h).  xkey.c explains what keyd is asked to
 * sign and why.
 *
 * The callbacks run inside gnutls_handshake(), on the handshake's
 * coroutine; the coroutine's argument is the handshake's struct xkey_hs,
 * which is all they know of the connection.
 */
#ifndef MOAT_XKEY_H
#define MOAT_XKEY_H

#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "ipc.h"
#include "kchan.h"
#include "reason.h"
#include "transcript.h"

#define XKEY_MAGIC		0x4b65794bu	/* "KeyK" */
#define XKEY_HS_MAGIC		0x4b48734bu	/* "KHsK" */

/* One of a frontend's keys in one keyd slot, as keyd described it. */
struct xkey_key {
	unsigned		magic;
	unsigned		index;		/* keyd slot: IPC_KEY_SLOT(fe, cert, gen) */
	struct kchan		*ch;		/* the worker's keyd channel */
	int			available;	/* listed by the current keyd */
	int			allow_decrypt;	/* frontend enabled RSA kx */
	int			cert_pk;	/* the certificate's gnutls_pk_algorithm_t */
	struct ipc_key_info	info;		/* from the certificate, then keyd */
	gnutls_privkey_t	pkey;		/* import_ext4, owned by the credentials */
};

/* What the key callbacks need of the handshake they serve. */
struct xkey_hs {
	unsigned		magic;
	gnutls_session_t	session;
	struct transcript	*tr;		/* TLS 1.3 CertificateVerify content */
	struct reason		*why;		/* set when an operation fails */
	const char		*peer;		/* for logs */
	struct kchan_req	*pending;	/* the operation it waits for */
	int			cancelled;	/* the connection is closing */
};

/* xkey.c */
int	xkey_import(struct xkey_key *k);
int	xkey_pk_family(int pk);

#endif
