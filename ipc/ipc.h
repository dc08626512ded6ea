/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc.h -- the framing that carries moat's IPC messages between moatd's
 * master, its workers and moat-keyd.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET socketpairs made by the master, so one
 * message is one datagram and no socket path exists.  Every message is a
 * fixed struct ipc_hdr followed by hdr.len payload bytes (ipc_codec.h);
 * file descriptors travel beside it with SCM_RIGHTS.  ipc_msgs.h is the
 * table of message types and of who may send which.
 *
 * Each channel starts with IPC_HELLO in both directions; a version mismatch
 * closes the channel (keyd may be older than moatd after an upgrade).
 *
 * This header includes neither libev nor GnuTLS.
 */
#ifndef MOAT_IPC_H
#define MOAT_IPC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "ipc_msgs.h"
#include "ipc_codec.h"

#define IPC_MAGIC		0x4d54u		/* "MT" */
#define IPC_MAX_MSG		(sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD)
#define IPC_SCM_MAX_FD		253u	/* the kernel's SCM_MAX_FD */

/* Fixed header of every message; hdr.len payload bytes follow. */
struct ipc_hdr {
	uint16_t	magic;		/* IPC_MAGIC */
	uint8_t		version;	/* IPC_VERSION */
	uint8_t		flags;		/* 0; reserved */
	uint16_t	type;		/* enum ipc_type */
	uint16_t	nfds;		/* fds attached with SCM_RIGHTS */
	uint32_t	id;		/* request id; an answer echoes it */
	uint32_t	len;		/* payload bytes, <= IPC_MAX_PAYLOAD */
};

/* A received message: header, payload in buf, fds taken over by the caller. */
struct ipc_msg {
	struct ipc_hdr	hdr;
	uint8_t		*payload;	/* points into buf */
	int		fds[IPC_MAX_FDS];
	unsigned	nfds;
	uint8_t		buf[IPC_MAX_MSG];
};

/*
 * The two ends of one channel, as the receiving process sees them: the
 * permit check of ipc_recv() refuses what `peer` may not send to `self`.
 */
struct ipc_ends {
	enum ipc_role	self;
	enum ipc_role	peer;
};

/* ipc.c */
int	ipc_send(int fd, uint16_t type, uint32_t id, const void *payload,
	    size_t len, const int *fds, unsigned nfds);
int	ipc_send_status(int fd, uint16_t type, uint32_t id, int status,
	    const int *fds, unsigned nfds);
int	ipc_recv(int fd, const struct ipc_ends *ends, struct ipc_msg *msg);
int	ipc_recv_wait(int fd, const struct ipc_ends *ends, struct ipc_msg *msg,
	    int64_t deadline_ms);
int64_t	ipc_now_ms(void);
int	ipc_hdr_decode(const uint8_t *buf, size_t n, struct ipc_hdr *hdr);
void	ipc_msg_close_fds(struct ipc_msg *msg);
void	ipc_fd_discard(int fd);
int	ipc_socketpair(int sv[2]);
int	ipc_peer_uid(int fd, uid_t *uid, pid_t *pid);
int	ipc_hello_send(int fd, enum ipc_role role);
int	ipc_hello_check(const struct ipc_msg *msg, enum ipc_role expect);
int	ipc_error_send(int fd, uint32_t id, int code, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

#endif
