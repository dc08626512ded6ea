/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_ipc_frame.c -- the IPC framing (ipc/ipc.c): descriptors passed and
 * closed, headers that disagree with the datagram, truncation, the hard
 * size cap, EOF and EAGAIN, peer credentials, and a lingering TCP socket
 * from a worker that must not freeze the receiver in close().
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc.h"
#include "testipc.h"

static void
test_fd_passing(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	struct stat a, b;
	struct ipc_channel ch = { 1, 1 };
	int fds[2], r, got;

	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fds[0] >= 0 && fds[1] >= 0);
	assert_int_equal(ipc_send(p->sv[0], IPC_KEY_LOAD, 3, &ch, sizeof(ch),
	    fds, 2), 0);
	r = testipc_recv(p->sv[1], &msg);
	assert_int_equal(r, 1);
	assert_int_equal(msg.nfds, 2);
	assert_int_equal(msg.hdr.nfds, 2);
	assert_int_equal(fstat(fds[0], &a), 0);
	assert_int_equal(fstat(msg.fds[0], &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	assert_int_equal(fstat(fds[1], &a), 0);
	assert_int_equal(fstat(msg.fds[1], &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	assert_true(msg.fds[0] != fds[0] && msg.fds[1] != fds[1]);
	/* Received fds are close-on-exec (MSG_CMSG_CLOEXEC). */
	assert_true(fcntl(msg.fds[0], F_GETFD) & FD_CLOEXEC);
	got = msg.fds[1];
	ipc_msg_close_fds(&msg);
	assert_int_equal(msg.nfds, 0);
	assert_int_equal(fcntl(got, F_GETFD), -1);	/* really closed */

	/* Too many fds are refused before anything is sent. */
	assert_int_equal(ipc_send(p->sv[0], IPC_CHANNEL_ADD, 3, &ch, sizeof(ch),
	    fds, IPC_MAX_FDS + 1), -EINVAL);
	close(fds[0]);
	close(fds[1]);
}

/* A header claiming fds that did not come (or the reverse) is rejected. */
static void
test_nfds_mismatch(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	struct ipc_hdr h;
	struct ipc_channel ch = { 0, 0 };
	uint8_t buf[64];

	memset(&h, 0, sizeof(h));
	h.magic = IPC_MAGIC;
	h.version = IPC_VERSION;
	h.type = IPC_CHANNEL_ADD;
	h.nfds = 1;
	h.len = sizeof(ch);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &ch, sizeof(ch));
	assert_int_equal(send(p->sv[0], buf, sizeof(h) + sizeof(ch), 0),
	    (ssize_t)(sizeof(h) + sizeof(ch)));
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EBADMSG);
	assert_int_equal(msg.nfds, 0);
}

static void
test_raw_rejects(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	static uint8_t buf[IPC_MAX_MSG + 64];
	struct ipc_hdr h;
	uint8_t pl[32];
	size_t n;

	memset(pl, 0, sizeof(pl));
	/* wrong magic */
	n = testipc_raw_msg(buf, 0x1234, IPC_VERSION, IPC_KEY_LIST, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EBADMSG);
	assert_int_equal(send(p->sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EBADMSG);
	/* wrong version */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION + 1, IPC_KEY_LIST, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EPROTO);
	assert_int_equal(send(p->sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EPROTO);
	/* unknown type */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, 999, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EOPNOTSUPP);
	assert_int_equal(send(p->sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EOPNOTSUPP);
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, 0, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EOPNOTSUPP);
	/* length field disagrees with the datagram, both ways */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_SIGN, 31, pl, 32);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EBADMSG);
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_SIGN, 33, pl, 32);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EBADMSG);
	assert_int_equal(send(p->sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EBADMSG);
	/* length field beyond the hard cap */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_SIGN,
	    IPC_MAX_PAYLOAD + 1, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n + IPC_MAX_PAYLOAD + 1, &h),
	    -EBADMSG);
	/* truncated header */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_KEY_LIST, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n - 1, &h), -EBADMSG);
	assert_int_equal(send(p->sv[0], buf, n - 1, 0), (ssize_t)(n - 1));
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EBADMSG);
	assert_int_equal(ipc_hdr_decode(NULL, 0, &h), -EBADMSG);
	/* reserved flags */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_KEY_LIST, 0, NULL, 0);
	buf[3] = 1;
	assert_int_equal(ipc_hdr_decode(buf, n, &h), -EBADMSG);
	/* a valid one still passes after all that */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_KEY_LIST, 0, NULL, 0);
	assert_int_equal(ipc_hdr_decode(buf, n, &h), 0);
	assert_int_equal(h.id, 42);
}

static void
test_oversized(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	static uint8_t buf[IPC_MAX_MSG + 64], pl[IPC_MAX_PAYLOAD + 10];
	size_t n;

	/* The sender refuses a payload over the cap. */
	assert_int_equal(ipc_send(p->sv[0], IPC_SIGN, 1, buf,
	    IPC_MAX_PAYLOAD + 1, NULL, 0), -EINVAL);
	/* A datagram larger than any message is truncated: -EMSGSIZE. */
	n = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_SIGN,
	    IPC_MAX_PAYLOAD + 10, pl, sizeof(pl));
	assert_int_equal(send(p->sv[0], buf, n, 0), (ssize_t)n);
	assert_int_equal(testipc_recv(p->sv[1], &msg), -EMSGSIZE);
	/* The exact maximum is fine. */
	assert_int_equal(ipc_send(p->sv[0], IPC_SIGN, 1, buf, IPC_MAX_PAYLOAD,
	    NULL, 0), 0);
	assert_int_equal(testipc_recv(p->sv[1], &msg), 1);
	assert_int_equal(msg.hdr.len, IPC_MAX_PAYLOAD);
	/* Unknown types are refused by the sender too. */
	assert_int_equal(ipc_send(p->sv[0], 999, 1, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(ipc_send(p->sv[0], IPC_SIGN, 1, NULL, 4, NULL, 0),
	    -EINVAL);
}

static void
test_eof_and_eagain(void **state)
{
	static struct ipc_msg msg;
	int sv[2], fl;

	assert_int_equal(ipc_socketpair(sv), 0);
	fl = fcntl(sv[1], F_GETFL);
	assert_int_equal(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
	assert_int_equal(testipc_recv(sv[1], &msg), -EAGAIN);
	close(sv[0]);
	assert_int_equal(testipc_recv(sv[1], &msg), 0);
	close(sv[1]);
}

static void
test_peer_uid(void **state)
{
	struct pair *p = *state;
	uid_t uid;
	pid_t pid;

	assert_int_equal(ipc_peer_uid(p->sv[0], &uid, &pid), 0);
	assert_int_equal(uid, getuid());
	assert_int_equal(pid, getpid());
	assert_int_equal(ipc_peer_uid(-1, &uid, &pid), -EBADF);
}

/* The open descriptors of this process. */
static unsigned
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own */
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * What a compromised worker can make: a loopback TCP socket whose peer
 * (*peer, kept open) never reads, its send buffer full, SO_LINGER 3 s.
 * Closing its last reference blocks for those 3 s unless made abortive.
 */
static int
lingering_socket(int *peer)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct linger lg = { 1, 3 };
	static char junk[65536];
	int lfd, cfd, small = 4096, fl;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	/* Small buffers (the accepted socket inherits the listener's). */
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small,
	    sizeof(small)), 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &small,
	    sizeof(small)), 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_true((*peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0);
	close(lfd);
	fl = fcntl(cfd, F_GETFL);
	assert_int_equal(fcntl(cfd, F_SETFL, fl | O_NONBLOCK), 0);
	while (send(cfd, junk, sizeof(junk), MSG_NOSIGNAL) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fcntl(cfd, F_SETFL, fl), 0);
	assert_int_equal(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	return cfd;
}

/* The peer of a socket that was closed abortively sees ECONNRESET. */
static void
assert_reset(int peer)
{
	static char buf[65536];
	ssize_t n;

	while ((n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	assert_int_equal(n, -1);
	assert_int_equal(errno, ECONNRESET);
}

/*
 * keyd receiving from a worker: a message with a lingering socket attached
 * is refused, and the socket is closed at once (abortively) instead of
 * blocking the receiver for the linger time.
 */
static void
test_worker_fd_lingering(void **state)
{
	static const struct ipc_ends from_worker = {
		IPC_ROLE_KEYD, IPC_ROLE_WORKER };
	static struct ipc_msg msg;
	uint8_t pl[32];
	int sv[2], sock, peer, r;
	unsigned before;
	double t;

	memset(pl, 0, sizeof(pl));
	assert_int_equal(ipc_socketpair(sv), 0);
	sock = lingering_socket(&peer);
	assert_int_equal(ipc_send(sv[0], IPC_SIGN, 5, pl, sizeof(pl), &sock,
	    1), 0);
	close(sock);	/* the message holds the last reference now */
	before = open_fds();
	t = now_s();
	r = ipc_recv(sv[1], &from_worker, &msg);
	t = now_s() - t;
	assert_int_equal(r, -EPERM);	/* a worker may send no descriptor */
	assert_int_equal(msg.nfds, 0);
	assert_true(t < 1.0);
	assert_int_equal(open_fds(), before);	/* the received copy closed */
	assert_reset(peer);
	close(peer);
	close(sv[0]);
	close(sv[1]);
}

/*
 * The same socket as the last of 101 descriptors: more than a message may
 * carry, but the control buffer has room for all (SCM_MAX_FD), so the
 * kernel closes none of them itself (which would block in recvmsg) and
 * ipc_recv() discards every one.
 */
static void
test_worker_fd_flood(void **state)
{
	static const struct ipc_ends from_worker = {
		IPC_ROLE_KEYD, IPC_ROLE_WORKER };
	static struct ipc_msg msg;
	static uint8_t buf[128];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 101)];
	} cbuf;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	int sv[2], fds[101], peer, r, i;
	unsigned before;
	double t;

	assert_int_equal(ipc_socketpair(sv), 0);
	for (i = 0; i < 100; i++)
		assert_true((fds[i] = open("/dev/null", O_RDONLY |
		    O_CLOEXEC)) >= 0);
	fds[100] = lingering_socket(&peer);
	iov.iov_base = buf;
	iov.iov_len = testipc_raw_msg(buf, IPC_MAGIC, IPC_VERSION, IPC_SIGN, 0,
	    NULL, 0);
	memset(&mh, 0, sizeof(mh));
	memset(&cbuf, 0, sizeof(cbuf));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)iov.iov_len);
	for (i = 0; i < 101; i++)
		close(fds[i]);
	before = open_fds();
	t = now_s();
	r = ipc_recv(sv[1], &from_worker, &msg);
	t = now_s() - t;
	assert_int_equal(r, -EMSGSIZE);
	assert_int_equal(msg.nfds, 0);
	assert_true(t < 1.0);
	assert_int_equal(open_fds(), before);
	assert_reset(peer);
	close(peer);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fd_passing, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_nfds_mismatch, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_raw_rejects, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_oversized, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test(test_eof_and_eagain),
		cmocka_unit_test_setup_teardown(test_peer_uid, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test(test_worker_fd_lingering),
		cmocka_unit_test(test_worker_fd_flood),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
