/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backend.h -- connecting to the backend (backend.c); conn.c acts on the
 * outcome and proxy.c pumps once it is connected.
 */
#ifndef MOAT_BACKEND_H
#define MOAT_BACKEND_H

#include <stdint.h>

#include "state.h"

enum backend_connect {
	BACKEND_CONNECTED = 0,	/* the backend is there: start pumping */
	BACKEND_CONNECTING,	/* wait for the backend fd to be writable */
	BACKEND_VIA_MASTER,	/* unix: backend: the master connects it */
	BACKEND_CONNECT_FAILED,	/* the end: c->why says why */
};

/* backend.c */
enum backend_connect backend_connect(struct conn *c);
enum backend_connect backend_connected(struct conn *c);
enum backend_connect backend_connected_by_master(struct conn *c, int status,
	    int fd);
void	backend_master_wait(struct conn *c);
struct conn *backend_master_waiter(struct worker *w, uint32_t id);
void	backend_master_unwait(struct conn *c);

#endif
