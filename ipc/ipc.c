/*
 * ipc.c -- framing over SOCK_SEQPACKET: one message per datagram, fds with
 * SCM_RIGHTS, peer credentials with SO_PEERCRED.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipc_keyop.h"

/*
 * Send one message.  Returns 0, or a negative errno (-EAGAIN when a
 * non-blocking socket is full: SOCK_SEQPACKET sends all or nothing).
 */
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
 * Receive one message into msg.  Returns 1 with a checked header, 0 when the
 * peer closed the channel, or a negative errno: -EAGAIN, -EMSGSIZE for a
 * truncated datagram, -EBADMSG / -EPROTO / -EOPNOTSUPP for a bad header.
 * On any error the fds that came with the message are closed.
 */
int
ipc_recv(int fd, struct ipc_msg *msg)
{
	struct iovec iov;
	struct msghdr mh;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
	} cbuf;
	struct cmsghdr *cm;
	ssize_t n;
	size_t nfds;
	int r;

	msg->nfds = 0;
	msg->payload = NULL;
	iov.iov_base = msg->buf;
	iov.iov_len = sizeof(msg->buf);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);

	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > IPC_MAX_FDS - msg->nfds)
			nfds = IPC_MAX_FDS - msg->nfds;	/* cannot: control sized */
		memcpy(&msg->fds[msg->nfds], CMSG_DATA(cm), nfds * sizeof(int));
		msg->nfds += (unsigned)nfds;
	}

	if (n == 0 && msg->nfds == 0)
		return 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		ipc_msg_close_fds(msg);
		return -EMSGSIZE;
	}
	if ((r = ipc_hdr_decode(msg->buf, (size_t)n, &msg->hdr)) < 0) {
		ipc_msg_close_fds(msg);
		return r;
	}
	if (msg->hdr.nfds != msg->nfds) {
		ipc_msg_close_fds(msg);
		return -EBADMSG;
	}
	msg->payload = msg->buf + sizeof(struct ipc_hdr);
	return 1;
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

const char *
ipc_type_name(uint16_t type)
{
	switch (type) {
	case IPC_ERROR:			return "ERROR";
	case IPC_HELLO:			return "HELLO";
	case IPC_HELLO_REPLY:		return "HELLO_REPLY";
	case IPC_KEY_LIST:		return "KEY_LIST";
	case IPC_KEY_LIST_REPLY:	return "KEY_LIST_REPLY";
	case IPC_SIGN:			return "SIGN";
	case IPC_SIGN_REPLY:		return "SIGN_REPLY";
	case IPC_DECRYPT:		return "DECRYPT";
	case IPC_DECRYPT_REPLY:		return "DECRYPT_REPLY";
	case IPC_KEY_LOAD:		return "KEY_LOAD";
	case IPC_KEY_LOAD_REPLY:	return "KEY_LOAD_REPLY";
	case IPC_CHANNEL_ADD:		return "CHANNEL_ADD";
	case IPC_CHANNEL_ADD_REPLY:	return "CHANNEL_ADD_REPLY";
	case IPC_KEYD_STATS:		return "KEYD_STATS";
	case IPC_KEYD_STATS_REPLY:	return "KEYD_STATS_REPLY";
	case IPC_WORKER_CHANNEL:	return "WORKER_CHANNEL";
	case IPC_WORKER_CHANNEL_REPLY:	return "WORKER_CHANNEL_REPLY";
	case IPC_WORKER_STATS:		return "WORKER_STATS";
	case IPC_WORKER_STATS_REPLY:	return "WORKER_STATS_REPLY";
	case IPC_WORKER_STOP:		return "WORKER_STOP";
	case IPC_WORKER_REKEY:		return "WORKER_REKEY";
	case IPC_WORKER_REKEY_REPLY:	return "WORKER_REKEY_REPLY";
	case IPC_WORKER_CERT:		return "WORKER_CERT";
	case IPC_WORKER_CERT_REPLY:	return "WORKER_CERT_REPLY";
	default:			return "UNKNOWN";
	}
}
