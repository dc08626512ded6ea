/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hello.c -- the HelloRequest that starts a server-initiated TLS 1.2
 * renegotiation: the only gnutls_rehandshake() call in moat.
 *
 * gnutls_rehandshake(3) is for a server: on a client session it fails
 * with GNUTLS_E_INVALID_REQUEST.  A connection holds two sessions when its
 * backend speaks TLS, and only the client-facing one (tls.c's, made with
 * GNUTLS_SERVER) may be asked to renegotiate.  That holds by construction:
 * this entry takes the connection, not a session, and sends on
 * c->session; the backend's session lives inside struct btls, which only
 * btls.c can open (this file does not include btls.h).  The check below
 * makes sure c->session is still the session tls.c made for c (it points
 * back at c, gnutls_session_set_ptr()), so a session swapped in by some
 * later change stops the worker instead of reaching the wire.
 */
#include "config.h"

#include <gnutls/gnutls.h>

#include "log.h"
#include "state.h"
#include "hello.h"

/* Queue a HelloRequest on c's client-facing session: gnutls_rehandshake(). */
int
hello_request(struct conn *c)
{
	if (c->session == NULL || gnutls_session_get_ptr(c->session) != c)
		fatalx("%s: not the connection's client-facing session",
		    __func__);
	return gnutls_rehandshake(c->session);
}
