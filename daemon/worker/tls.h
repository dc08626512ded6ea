/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tls.h -- GnuTLS in the worker: a frontend's priorities, a connection's
 * server session, and its handshake, first or renegotiated, driven on a
 * coroutine.  A leaf: it reads and sets its part of struct conn and says
 * what should happen next (enum tls_verdict); conn.c acts on it.
 */
#ifndef MOAT_TLS_H
#define MOAT_TLS_H

#include "reneg.h"
#include "state.h"

#define TLS_HS_PARKED	1	/* tls_handshake_step(): waiting for keyd */

enum tls_verdict {
	TLS_DONE = 0,		/* the handshake finished */
	TLS_WANT_READ,		/* call again when the client fd is readable */
	TLS_WANT_WRITE,		/* ... writable */
	TLS_RETRY,		/* a warning alert: call again at once */
	TLS_APPDATA,		/* renegotiation met application data: read it */
	TLS_FAILED,		/* the end: c->why says why */
};

/* tls.c */
int	tls_frontend_init(struct worker_frontend *wf,
	    const uint8_t ticket_key[CONFIG_TICKET_KEY_SIZE]);
int	tls_session_new(struct conn *c);
int	tls_session_cred_switch(struct conn *c);
int	tls_handshake_step(struct conn *c, void (*finished)(struct conn *));
enum tls_verdict tls_handshake_verdict(struct conn *c, int r, int reneg);
void	tls_reneg_in(const struct conn *c, struct reneg_in *in);
const char *tls_version_name(const struct conn *c);
const char *tls_cipher_name(const struct conn *c);
void	tls_alpn_note(struct conn *c);

#endif
