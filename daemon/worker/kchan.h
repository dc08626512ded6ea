/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kchan.h -- a worker's channel to keyd: the start-up exchange, requests in
 * flight matched by id with one deadline each, replacement after a keyd
 * restart.  kchan.c explains the design.
 *
 * It knows no connection and no worker: a key operation is a call from a
 * coroutine (kchan_call() yields until the answer), and what the worker
 * must hear -- keyd's key list, the channel ready or lost, keyd breaking
 * the protocol -- reaches it through the hooks it set.
 */
#ifndef MOAT_KCHAN_H
#define MOAT_KCHAN_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "ipc.h"

#define KCHAN_BUCKETS		256u		/* request-id hash */

enum kchan_state {
	KCHAN_DOWN = 0,		/* no channel: key operations fail fast, or
				 * wait for the next one (kchan.lost) */
	KCHAN_HELLO,		/* hello sent, waiting for keyd's */
	KCHAN_KEYS,		/* key list asked for */
	KCHAN_READY,
};

struct kchan_req;

/* What the worker hears from its channel (set by kchan_init()). */
struct kchan_hooks {
	/* keyd's key list: at start-up (initial) and on every new channel */
	int	(*keys)(void *arg, const struct ipc_key_info *keys, unsigned n,
		    int initial);
	/* the channel kchan_replace(token) handed is ready (0) or failed */
	void	(*ready)(void *arg, uint32_t token, int status);
	/* keyd broke the protocol on a channel that was ready */
	void	(*violation)(void *arg);
	void	*arg;
};

struct kchan {
	struct ev_loop		*loop;		/* NULL until kchan_attach() */
	int			fd;
	enum kchan_state	state;
	ev_io			io;
	ev_timer		req_timer;	/* earliest request deadline */
	ev_timer		setup_timer;	/* hello + key list deadline */
	unsigned		timeout_ms;	/* of every request (keyd-timeout) */
	struct ipc_worker_stats	*stats;
	struct kchan_hooks	hooks;
	uint32_t		next_id;	/* ids issued on this channel */
	int			wrapped;	/* next_id went round */
	uint32_t		list_id;	/* id of the KEY_LIST request */
	unsigned		generation;	/* channels seen, for logs */
	int			broken;		/* send failed: drop when back in the loop */
	int			lost;		/* down, requests wait for the next one */
	uint32_t		token;		/* of the kchan_replace() in progress */
	/* in flight, oldest first; all share one timeout: deadline order */
	struct kchan_req	*head, *tail;
	unsigned		npending;
	unsigned		nunsent;	/* waiting for the socket to drain */
	struct kchan_req	*bucket[KCHAN_BUCKETS];
};

/* kchan.c */
void	kchan_init(struct kchan *ch, unsigned timeout_ms,
	    struct ipc_worker_stats *stats, const struct kchan_hooks *hooks);
int	kchan_start(struct kchan *ch, int fd);
void	kchan_attach(struct kchan *ch, struct ev_loop *loop);
void	kchan_replace(struct kchan *ch, int fd, uint32_t token);
int	kchan_call(struct kchan *ch, uint16_t type, const uint8_t *payload,
	    size_t len, const char *peer, struct kchan_req **pending,
	    gnutls_datum_t *out, char *err, size_t errlen);
void	kchan_req_abort(struct kchan_req *req, int err);
int	kchan_ready(const struct kchan *ch);
int	kchan_usable(const struct kchan *ch);

#endif
