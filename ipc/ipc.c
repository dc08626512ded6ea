/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc.c -- framing over SOCK_SEQPACKET: one message per datagram, fds with
 * SCM_RIGHTS, the permit check of ipc_msgs.h on every receive (and
 * descriptors from a worker closed so that no close can block), a receive
 * with a deadline for the few exchanges that must wait, peer credentials
 * with SO_PEERCRED.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

/*
 * Check the header of one whole datagram: magic, version, a type the table
 * knows, the exact length, a sane descriptor count.  Pure (a fuzz target).
 */
int
ipc_hdr_decode(const uint8_t *buf, size_t n, struct ipc_hdr *hdr)
{
	if (buf == NULL || n < sizeof(*hdr) || n > IPC_MAX_MSG)
		return -EBADMSG;
	memcpy(hdr, buf, sizeof(*hdr));
	if (hdr->magic != IPC_MAGIC)
		return -EBADMSG;
	if (hdr->version != IPC_VERSION)
		return -EPROTO;
	if (hdr->len > IPC_MAX_PAYLOAD || hdr->len != n - sizeof(*hdr))
		return -EBADMSG;
	if (hdr->nfds > IPC_MAX_FDS || hdr->flags != 0)
		return -EBADMSG;
	if (!ipc_type_known(hdr->type))
		return -EOPNOTSUPP;
	return 0;
}


/*
 * Send one message.  Returns 0, or a negative errno (-EAGAIN when a
 * non-blocking socket is full: SOCK_SEQPACKET sends all or nothing).
 */
/*
 * A reply that carries only a status (an ipc_reply without data), and
 * maybe descriptors: what most answers are.  0, or -errno.
 */
int
ipc_send_status(int fd, uint16_t type, uint32_t id, int status,
    const int *fds, unsigned nfds)
{
	struct ipc_reply rep;
	uint8_t buf[2 * sizeof(uint32_t)];
	ssize_t len;

	memset(&rep, 0, sizeof(rep));
	rep.status = status < 0 ? status : 0;
	if ((len = ipc_reply_encode(buf, sizeof(buf), &rep)) < 0)
		return (int)len;
	return ipc_send(fd, type, id, buf, (size_t)len, fds, nfds);
}

int
ipc_send(int fd, uint16_t type, uint32_t id, const void *payload, size_t len,
    const int *fds, unsigned nfds)
{
	struct ipc_hdr hdr;
	struct iovec iov[2];
	struct msghdr mh;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
	} cbuf;
	struct cmsghdr *cm;
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD || nfds > IPC_MAX_FDS ||
	    (len > 0 && payload == NULL) || !ipc_type_known(type))
		return -EINVAL;

	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = IPC_MAGIC;
	hdr.version = IPC_VERSION;
	hdr.type = type;
	hdr.nfds = (uint16_t)nfds;
	hdr.id = id;
	hdr.len = (uint32_t)len;

	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)payload;
	iov[1].iov_len = len;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = len > 0 ? 2 : 1;
	if (nfds > 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}

	do {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(hdr) + len)
		return -EIO;	/* cannot happen on SOCK_SEQPACKET */
	return 0;
}

void
ipc_msg_close_fds(struct ipc_msg *msg)
{
	unsigned i;

	for (i = 0; i < msg->nfds; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

/*
 * Close a descriptor a peer that may send none (a worker) attached to a
 * message.  A compromised worker can pass a TCP socket with SO_LINGER set
 * and a send buffer its peer never drains: a plain close() of the last
 * reference would then block this process's loop for the linger time.
 * SO_LINGER {1, 0} first makes the close abortive (an RST, the buffer
 * dropped), which never waits.  On a descriptor that is no socket the
 * setsockopt fails with ENOTSOCK and is ignored; the others a sandboxed
 * worker can hold (pipes, eventfds, epoll) close without waiting.
 */
void
ipc_fd_discard(int fd)
{
	struct linger lg = { 1, 0 };

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Close n received descriptors: through ipc_fd_discard() if untrusted. */
static void
ipc_recv_close(int *fds, unsigned n, int untrusted)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (untrusted)
			ipc_fd_discard(fds[i]);
		else if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/*
 * Receive one message into msg, from the peer ends->peer.  Returns 1 with a
 * checked header, 0 when the peer closed the channel, or a negative errno:
 * -EAGAIN, -EMSGSIZE for a truncated datagram (or more descriptors than a
 * message may carry), -EBADMSG / -EPROTO / -EOPNOTSUPP for a bad header,
 * -EPERM for a type (or a number of descriptors) this peer may not send
 * (ipc_msgs.h).  On any error the fds that came with the message are
 * closed; nothing of the payload was read.
 *
 * From a worker (ends->peer == IPC_ROLE_WORKER), which may send no
 * descriptor at all, the control buffer has room for SCM_MAX_FD of them:
 * the kernel never truncates it, so it never drops and closes one itself
 * (a close that could block in recvmsg()), and every one is closed here
 * through ipc_fd_discard().
 */
int
ipc_recv(int fd, const struct ipc_ends *ends, struct ipc_msg *msg)
{
	struct iovec iov;
	struct msghdr mh;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * IPC_SCM_MAX_FD)];
	} cbuf;
	struct cmsghdr *cm;
	int got[IPC_SCM_MAX_FD], untrusted, r;
	unsigned ngot = 0;
	ssize_t n;
	size_t nfds;

	untrusted = ends != NULL && ends->peer == IPC_ROLE_WORKER;
	msg->nfds = 0;
	msg->payload = NULL;
	iov.iov_base = msg->buf;
	iov.iov_len = sizeof(msg->buf);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	/* A trusted peer sends at most IPC_MAX_FDS; a worker none at all. */
	mh.msg_controllen = untrusted ? sizeof(cbuf.buf) :
	    CMSG_SPACE(sizeof(int) * IPC_MAX_FDS);

	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > IPC_SCM_MAX_FD - ngot)
			nfds = IPC_SCM_MAX_FD - ngot;	/* cannot: sized */
		memcpy(&got[ngot], CMSG_DATA(cm), nfds * sizeof(int));
		ngot += (unsigned)nfds;
	}
	if (ngot > IPC_MAX_FDS) {
		ipc_recv_close(got, ngot, untrusted);
		return -EMSGSIZE;
	}
	memcpy(msg->fds, got, ngot * sizeof(int));
	msg->nfds = ngot;

	if (n == 0 && msg->nfds == 0)
		return 0;
	r = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -EMSGSIZE : 0;
	if (r == 0)
		r = ipc_hdr_decode(msg->buf, (size_t)n, &msg->hdr);
	if (r == 0 && msg->hdr.nfds != msg->nfds)
		r = -EBADMSG;
	if (r == 0 && (ends == NULL || ipc_permit(msg->hdr.type, ends->peer,
	    ends->self, msg->nfds) < 0))
		r = -EPERM;
	if (r < 0) {
		ipc_recv_close(msg->fds, msg->nfds, untrusted);
		msg->nfds = 0;
		return r;
	}
	msg->payload = msg->buf + sizeof(struct ipc_hdr);
	return 1;
}

int64_t
ipc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * ipc_recv() that waits until deadline_ms (ipc_now_ms()'s clock) for a
 * message: the start-up exchanges that nothing can be served without.
 * Returns what ipc_recv() does, or -ETIMEDOUT.
 */
int
ipc_recv_wait(int fd, const struct ipc_ends *ends, struct ipc_msg *msg,
    int64_t deadline_ms)
{
	struct pollfd pfd;
	int64_t left;
	int r;

	for (;;) {
		r = ipc_recv(fd, ends, msg);
		if (r != -EAGAIN && r != -EINTR)
			return r;
		if ((left = deadline_ms - ipc_now_ms()) <= 0)
			return -ETIMEDOUT;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) < 0 &&
		    errno != EINTR)
			return -errno;
	}
}

int
ipc_socketpair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	return 0;
}

int
ipc_peer_uid(int fd, uid_t *uid, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EIO;
	if (uid != NULL)
		*uid = cred.uid;
	if (pid != NULL)
		*pid = cred.pid;
	return 0;
}

int
ipc_hello_send(int fd, enum ipc_role role)
{
	struct ipc_hello h;

	memset(&h, 0, sizeof(h));
	h.version = IPC_VERSION;
	h.role = role;
	h.pid = (uint32_t)getpid();
	return ipc_send(fd, IPC_HELLO, 0, &h, sizeof(h), NULL, 0);
}

/* Check a received hello: right type, our version, the expected role. */
int
ipc_hello_check(const struct ipc_msg *msg, enum ipc_role expect)
{
	struct ipc_hello h;
	int r;

	if (msg->hdr.type != IPC_HELLO)
		return -EPROTO;
	if ((r = ipc_hello_decode(msg->payload, msg->hdr.len, &h)) < 0)
		return r;
	if (h.version != IPC_VERSION)
		return -EPROTO;
	if (h.role != (uint32_t)expect)
		return -EPERM;
	return 0;
}

int
ipc_error_send(int fd, uint32_t id, int code, const char *fmt, ...)
{
	struct ipc_error e;
	va_list ap;

	memset(&e, 0, sizeof(e));
	e.code = code < 0 ? code : -EINVAL;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	return ipc_send(fd, IPC_ERROR, id, &e, sizeof(e), NULL, 0);
}
