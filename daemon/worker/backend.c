/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * backend.c -- connecting a connection to its frontend's backend: a TCP
 * backend directly (non-blocking), a unix: one through the master, which
 * connects it with the workers' credentials and passes the socket
 * (daemon/master/master_backend.c); the connections waiting for that
 * answer are the worker's backend_waiting list.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "reason.h"
#include "state.h"
#include "backend.h"

static enum backend_connect
backend_connect_failed(struct conn *c, const char *what, int err)
{
	c->w->stats.backend_errors++;
	reason_set(&c->why, "backend connect failed: %s%s%s", what,
	    what[0] != '\0' ? ": " : "", strerror(err));
	return BACKEND_CONNECT_FAILED;
}

/* Handshake done: connect to the backend (non-blocking). */
enum backend_connect
backend_connect(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	const struct config_addr *a = &fe->backend;
	int fd, one = 1;

	if (a->ss.ss_family == AF_UNIX)
		return BACKEND_VIA_MASTER;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return backend_connect_failed(c, "socket", errno);
	c->bfd = fd;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return BACKEND_CONNECTED;
	if (errno == EINPROGRESS)
		return BACKEND_CONNECTING;
	return backend_connect_failed(c, "", errno);
}

/* c asked the master for its backend (c->backend_id): it waits. */
void
backend_master_wait(struct conn *c)
{
	c->backend_next = c->w->backend_waiting;
	c->w->backend_waiting = c;
}

/* Who waits for the master's answer id, or NULL (it ended meanwhile). */
struct conn *
backend_master_waiter(struct worker *w, uint32_t id)
{
	struct conn *c;

	for (c = w->backend_waiting; c != NULL; c = c->backend_next)
		if (c->backend_id == id)
			return c;
	return NULL;
}

/* No longer waiting for the master's backend socket. */
void
backend_master_unwait(struct conn *c)
{
	struct conn **pp;

	if (c->backend_id == 0)
		return;
	for (pp = &c->w->backend_waiting; *pp != NULL; pp = &(*pp)->backend_next)
		if (*pp == c) {
			*pp = c->backend_next;
			break;
		}
	c->backend_next = NULL;
	c->backend_id = 0;
}

/* The master answered our IPC_BACKEND_CONNECT: status, and the socket. */
enum backend_connect
backend_connected_by_master(struct conn *c, int status, int fd)
{
	if (status < 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return backend_connect_failed(c, "", status < 0 ? -status : EIO);
	}
	c->bfd = fd;
	return BACKEND_CONNECTED;
}

/* The backend socket became writable while connecting. */
enum backend_connect
backend_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return BACKEND_CONNECTING;
	if (err != 0)
		return backend_connect_failed(c, "", err);
	return BACKEND_CONNECTED;
}
