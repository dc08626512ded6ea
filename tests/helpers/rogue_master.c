/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rogue_master.c -- what a taken-over worker (roguelib.c) tries on its
 * master channel; rogue_worker's "master" and "certfail" modes.  Each
 * prints one JSON object.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ipc.h"
#include "keydlib.h"
#include "rogue_master.h"
#include "roguelib.h"

/* One message the master must not take from a worker; did it close? */
void
rogue_master_send(struct rogue_worker *w, const char *message)
{
	static struct ipc_msg msg;
	static const struct ipc_ends ends = { IPC_ROLE_WORKER, IPC_ROLE_MASTER };
	struct ipc_key_load kl;
	const void *payload = NULL;
	size_t len = 0;
	uint16_t type = 0, t;
	double t0, after = -1;
	unsigned nrecv = 0;
	int r, sr, closed = 0;

	for (t = 1; t < 128 && type == 0; t++)
		if (ipc_type_known(t) && strcmp(ipc_type_name(t),
		    message) == 0)
			type = t;
	if (type == 0)
		keydlib_die("master: unknown message %s", message);
	if (type == IPC_KEY_LOAD) {
		memset(&kl, 0, sizeof(kl));
		snprintf(kl.name, sizeof(kl.name), "rogue");
		snprintf(kl.key_path, sizeof(kl.key_path), "/etc/shadow");
		payload = &kl;
		len = sizeof(kl);
	}
	t0 = rogue_now_ms();
	sr = ipc_send(w->master_fd, type, keydlib_id_next(), payload, len,
	    NULL, 0);
	printf("{\"mode\": \"master\", \"worker\": %d, \"sent\": \"%s\", "
	    "\"send\": %d, \"received\": [", w->index, message, sr);
	for (;;) {
		r = ipc_recv_wait(w->master_fd, &ends, &msg, ipc_now_ms() +
		    (keydlib_remaining_ms() < 5000 ? keydlib_remaining_ms() :
		    5000));
		if (r == 0 || r == -ECONNRESET || r == -EPIPE) {
			closed = 1;
			after = rogue_now_ms() - t0;
			break;
		}
		if (r == -ETIMEDOUT || (r < 0 && r != -EPERM))
			break;
		printf("%s\"%s\"", nrecv++ ? ", " : "", r < 0 ? "refused" :
		    ipc_type_name(msg.hdr.type));
	}
	printf("], \"closed\": %s, \"closed_after_ms\": %.1f}\n",
	    closed ? "true" : "false", after);
}

/* Refuse every rotation, and swallow the stop that follows. */
void
rogue_master_certfail(struct rogue_worker *w, unsigned seconds)
{
	static struct ipc_msg msg;
	static const struct ipc_ends ends = { IPC_ROLE_WORKER, IPC_ROLE_MASTER };
	int64_t deadline = ipc_now_ms() + (int64_t)seconds * 1000;
	int r, stop = 0, sr = 0;
	unsigned answered = 0, nrecv = 0;

	printf("{\"mode\": \"certfail\", \"worker\": %d, \"received\": [",
	    w->index);
	while (!stop && ipc_now_ms() < deadline) {
		r = ipc_recv_wait(w->master_fd, &ends, &msg, deadline);
		if (r <= 0 && r != -EPERM)
			break;		/* closed, or the deadline */
		if (r < 0)
			continue;
		printf("%s\"%s\"", nrecv++ ? ", " : "",
		    ipc_type_name(msg.hdr.type));
		ipc_msg_close_fds(&msg);
		if (msg.hdr.type == IPC_WORKER_CERT) {
			if ((r = ipc_send_status(w->master_fd,
			    IPC_WORKER_CERT_REPLY, msg.hdr.id, -EIO, NULL, 0)) < 0)
				sr = r;
			answered++;
		} else if (msg.hdr.type == IPC_WORKER_STOP)
			stop = 1;
	}
	printf("], \"answered\": %u, \"send\": %d, \"stop\": %s}\n",
	    answered, sr, stop ? "true" : "false");
}
