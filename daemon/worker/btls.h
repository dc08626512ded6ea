/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * btls.h -- the backend's transport (btls.c): plain TCP, or with
 * backend-tls a GnuTLS client session whose certificate is verified.
 * proxy.c moves bytes through these calls and never sees the backend's
 * session: struct btls is opaque outside btls.c, so nothing else in moat
 * can hand it to gnutls_rehandshake() or to the renegotiation code.
 */
#ifndef MOAT_BTLS_H
#define MOAT_BTLS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* What a backend read, write or handshake step says besides a count. */
#define BIO_AGAIN	(-1)	/* wait for the fd: readable (recv), writable (send) */
#define BIO_AGAIN_WR	(-2)	/* recv or handshake must write: wait for writable */
#define BIO_FAILED	(-3)	/* the backend failed: *why says how */

/* btls.c */
int	btls_frontend_init(struct worker_frontend *wf);
void	btls_frontend_free(struct worker_frontend *wf);
int	btls_start(struct conn *c);
int	btls_ready(const struct conn *c);
int	btls_handshake(struct conn *c, const char **why);
ssize_t	btls_send(struct conn *c, const uint8_t *p, size_t len,
	    const char **why);
ssize_t	btls_recv(struct conn *c, uint8_t *p, size_t len, const char **why);
int	btls_shutdown(struct conn *c, int notify);
void	btls_free(struct conn *c);

#endif
