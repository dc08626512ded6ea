/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_ipc_frame.c -- the IPC framing (ipc/ipc.c): descriptors passed and
 * closed, headers that disagree with the datagram, truncation, the hard
 * size cap, EOF and EAGAIN, peer credentials.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
