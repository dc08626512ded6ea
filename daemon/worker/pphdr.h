/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pphdr.h -- a connection's PROXY headers (pphdr.c): the one a balancer
 * in front sends (accept-proxy =), read before the TLS handshake, and the
 * one written to the backend (proxy-protocol =).  A leaf: it says what
 * should happen (enum pphdr_verdict) and conn.c does it.
 */
#ifndef MOAT_PPHDR_H
#define MOAT_PPHDR_H

#include <sys/socket.h>

#include "state.h"

enum pphdr_verdict {
	PPHDR_DONE = 0,		/* header read (or none due): the handshake */
	PPHDR_WAIT,		/* call again when the client fd is readable */
	PPHDR_FAILED,		/* the end: c->why says why */
};

/* pphdr.c */
void	pphdr_init(struct conn *c, const struct sockaddr *sa, socklen_t salen);
enum pphdr_verdict pphdr_in(struct conn *c);
ssize_t	pphdr_encode(struct conn *c, uint8_t *buf, size_t size);
int	pphdr_out(struct conn *c);
void	pphdr_free(struct conn *c);
void	pphdr_uid_hex(const struct conn *c, char *out, size_t size);

#endif
