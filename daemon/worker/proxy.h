/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.h -- once the backend is connected (backend.h): pump plaintext
 * both ways (proxy.c explains the rules it keeps).  A leaf:
 * it moves bytes and says what should happen; conn.c arms the watchers it
 * asks for (c->wants) and ends the connection when told.
 */
#ifndef MOAT_PROXY_H
#define MOAT_PROXY_H

#include <stddef.h>

#include "state.h"

enum proxy_verdict {
	PROXY_WAIT = 0,		/* arm c->wants; come back at once if wants.more */
	PROXY_RENEG_HS,		/* the client's ClientHello is in: run the handshake */
	PROXY_IN_HANDSHAKE,	/* a renegotiation handshake owns the client side */
	PROXY_HS_APPDATA,	/* ... and its application data can be read now */
	PROXY_FINISHED,		/* both directions closed and flushed */
	PROXY_CLOSE,		/* the end: c->why says why */
};

enum proxy_appdata {
	PROXY_APPDATA_READ = 0,	/* read: go on with the handshake */
	PROXY_APPDATA_FULL,	/* c2b is full: wait for the backend */
	PROXY_APPDATA_CLOSE,	/* the end: c->why says why */
};

/* proxy.c */
int	proxy_start(struct conn *c);
void	proxy_client_ready(struct conn *c, int revents);
void	proxy_backend_ready(struct conn *c, int revents);
enum proxy_verdict proxy_run(struct conn *c);
void	proxy_queue_reneg(struct conn *c);
void	proxy_flush_end(struct conn *c, int drain, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	proxy_hs_begin(struct conn *c);
enum proxy_appdata proxy_hs_appdata(struct conn *c);
int	proxy_quiet(const struct conn *c, double now);
void	proxy_free(struct conn *c);

#endif
