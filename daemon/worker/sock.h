/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sock.h -- a connection's socket helpers (sock.c).
 */
#ifndef MOAT_SOCK_H
#define MOAT_SOCK_H

#include <sys/socket.h>

#include <stddef.h>

#define SOCK_PEEK_NOTHING	0
#define SOCK_PEEK_DATA		1
#define SOCK_PEEK_EOF		2

/* sock.c */
void	sock_peer_name(char *out, size_t size, const struct sockaddr *sa,
	    socklen_t salen);
size_t	sock_input_discard(int fd);
int	sock_peek(int fd);

#endif
