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
void	conn_new(struct worker_frontend *wf, int fd,
	    const struct sockaddr *sa, socklen_t salen);
void	conn_drain(struct conn *c, int hard);
int	conn_ask(struct conn *c, const char *why);
void	conn_backend_arrived(struct worker *w, uint32_t id, int status,
	    int fd);

#endif
