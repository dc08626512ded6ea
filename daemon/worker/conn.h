/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.h -- a client connection in a worker (struct conn in state.h), and
 * the one file that owns it: conn.c routes its events, applies what the
 * leaves (tls, proxy, reneg) say, moves it from state to state, and is the
 * only place that ends and frees it.
 */
#ifndef MOAT_CONN_H
#define MOAT_CONN_H

#include <sys/socket.h>

#include "state.h"

/* conn.c */
struct conn *conn_new(struct worker_frontend *wf, int fd,
	    const struct sockaddr *sa, socklen_t salen);
void	conn_drain_all(struct worker *w, int hard);
unsigned conn_rekey_all(struct worker *w, const struct worker_frontend *only,
	    const char *why);
void	conn_backend_arrived(struct worker *w, uint32_t id, int status,
	    int fd);

#endif
