/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxy.h -- after the handshake: connect to the frontend's backend and
 * pump plaintext both ways (proxy.c explains the rules it keeps).  A leaf:
 * it moves bytes and says what should happen; conn.c arms the watchers it
 * asks for (c->wants) and ends the connection when told.
 */
#ifndef MOAT_PROXY_H
#define MOAT_PROXY_H

#include <stddef.h>

#include "state.h"

enum proxy_connect {
	PROXY_CONNECTED = 0,	/* the backend is there: start pumping */
	PROXY_CONNECTING,	/* wait for the backend fd to be writable */
	PROXY_VIA_MASTER,	/* unix: backend: the master connects it */
	PROXY_CONNECT_FAILED,	/* the end: c->why says why */
};

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
enum proxy_connect proxy_connect(struct conn *c);
enum proxy_connect proxy_connected(struct conn *c);
enum proxy_connect proxy_connected_by_master(struct conn *c, int status,
	    int fd);
int	proxy_start(struct conn *c);
void	proxy_client_ready(struct conn *c, int revents);
void	proxy_backend_ready(struct conn *c, int revents);
enum proxy_verdict proxy_run(struct conn *c);
void	proxy_queue_reneg(struct conn *c);
void	proxy_master_wait(struct conn *c);
struct conn *proxy_master_waiter(struct worker *w, uint32_t id);
void	proxy_master_unwait(struct conn *c);
void	proxy_flush_end(struct conn *c, int drain, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	proxy_hs_begin(struct conn *c);
enum proxy_appdata proxy_hs_appdata(struct conn *c);
int	proxy_quiet(const struct conn *c, double now);
void	proxy_free(struct conn *c);

#endif
