/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sock.c -- what a connection's sockets need besides TLS and the pump: the
 * client's printable address, a look at its input that reads nothing, and
 * its unread input dropped before a close.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "sock.h"

/* A peer's address as log lines show it, into out. */
void
sock_peer_name(char *out, size_t size, const struct sockaddr *sa,
    socklen_t salen)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	char a[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		if (salen < (socklen_t)sizeof(*sin))
			break;
		sin = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(out, size, "%s:%u", a,
		    (unsigned)ntohs(sin->sin_port));
		return;
	case AF_INET6:
		if (salen < (socklen_t)sizeof(*sin6))
			break;
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(out, size, "[%s]:%u", a,
		    (unsigned)ntohs(sin6->sin6_port));
		return;
	case AF_UNIX:
		snprintf(out, size, "unix");
		return;
	}
	snprintf(out, size, "?");
}

/*
 * Before a close: drop what the peer sent that nobody will read.  A
 * socket closed with unread data is reset, and the reset takes with it
 * what we sent that has not reached the peer yet -- the last of the
 * backend's reply, or our close_notify.  Bounded: data that comes later
 * is the peer's own doing.  Returns how many bytes it dropped (mail.c
 * drops a backend's unasked output with it too).
 */
size_t
sock_input_discard(int fd)
{
	uint8_t buf[4096];
	size_t dropped = 0;
	ssize_t n;
	unsigned i;

	for (i = 0; i < 64; i++) {
		if ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) <= 0)
			break;
		dropped += (size_t)n;
	}
	return dropped;
}

/* What waits on fd, without taking it: SOCK_PEEK_*, or -errno. */
int
sock_peek(int fd)
{
	uint8_t b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0)
		return SOCK_PEEK_DATA;
	if (n == 0)
		return SOCK_PEEK_EOF;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return SOCK_PEEK_NOTHING;
	return -errno;
}
