/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_ipc_msgs.c -- the message table (ipc/ipc_msgs.h) and the permit
 * check every process's receive goes through.
 *
 * Every type the protocol has is sent over a real socketpair from each of
 * the three peers to each of the three receivers, with no descriptor, with
 * as many as the table allows and with one more; ipc_recv() must hand over
 * exactly the messages the protocol allows on that channel and refuse the
 * rest with -EPERM, descriptors closed, before the payload is looked at.
 *
 * The expectation below is written independently of the table, by value:
 * which values each sender may put on each channel.  A slip in the table
 * (a wrong sender, a missing receiver, fds where none belong) fails here.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc.h"

static const enum ipc_role roles[] = {
	IPC_ROLE_MASTER, IPC_ROLE_WORKER, IPC_ROLE_KEYD
};

/* The protocol, by value: what `from` may send to `to`, 0-terminated. */
struct channel_spec {
	enum ipc_role	from, to;
	uint16_t	types[12];
};

static const struct channel_spec spec[] = {
	{ IPC_ROLE_WORKER, IPC_ROLE_KEYD,	{ 2, 4, 6, 8, 10, 0 } },
	{ IPC_ROLE_KEYD, IPC_ROLE_WORKER,	{ 1, 2, 5, 7, 9, 0 } },
	{ IPC_ROLE_MASTER, IPC_ROLE_KEYD,	{ 2, 20, 22, 24, 26, 0 } },
	{ IPC_ROLE_KEYD, IPC_ROLE_MASTER,	{ 1, 2, 21, 23, 25, 27, 0 } },
	{ IPC_ROLE_MASTER, IPC_ROLE_WORKER,	{ 2, 40, 42, 44, 46, 48, 51, 0 } },
	{ IPC_ROLE_WORKER, IPC_ROLE_MASTER,	{ 1, 2, 41, 43, 47, 49, 50, 52, 0 } },
};

/* Messages that carry descriptors, and how many at most. */
static const struct {
	uint16_t	type;
	unsigned	fds;
} fd_spec[] = {
	{ 20, 3 },	/* key, certificate, passphrase */
	{ 22, 1 },	/* a worker's keyd channel */
	{ 40, 1 },	/* a new keyd channel for a worker */
	{ 48, 16 },	/* a chain and an OCSP response per certificate (8) */
	{ 51, 1 },	/* a connected unix-socket backend */
};

static int
spec_allows(enum ipc_role from, enum ipc_role to, uint16_t type)
{
	size_t i, j;

	for (i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		if (spec[i].from != from || spec[i].to != to)
			continue;
		for (j = 0; spec[i].types[j] != 0; j++)
			if (spec[i].types[j] == type)
				return 1;
	}
	return 0;
}

static unsigned
spec_fds(uint16_t type)
{
	size_t i;

	for (i = 0; i < sizeof(fd_spec) / sizeof(fd_spec[0]); i++)
		if (fd_spec[i].type == type)
			return fd_spec[i].fds;
	return 0;
}

/* Every value the spec names, and every value the table knows, agree. */
static void
test_known_types(void **state)
{
	unsigned t, nknown = 0, i, j;
	int named;

	(void)state;
	for (t = 0; t <= UINT16_MAX; t++) {
		named = 0;
		for (i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
			for (j = 0; spec[i].types[j] != 0; j++)
				if (spec[i].types[j] == t)
					named = 1;
		assert_int_equal(ipc_type_known((uint16_t)t), named);
		if (!named) {
			assert_string_equal(ipc_type_name((uint16_t)t),
			    "UNKNOWN");
			continue;
		}
		nknown++;
		assert_string_not_equal(ipc_type_name((uint16_t)t), "UNKNOWN");
		/* requests even, their answers the next odd value */
		if (t % 2 == 1 && t != IPC_ERROR)
			assert_true(ipc_type_known((uint16_t)(t - 1)));
	}
	assert_int_equal(nknown, 29);
}

static int
fds_open(int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if ((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			return -1;
	return 0;
}

static void
fds_close(int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Send `type` with nfds descriptors from `from` to `to` and receive it as
 * `to` does: 1 if handed over, or ipc_recv()'s refusal, or ipc_send()'s
 * (more than IPC_MAX_FDS never leaves).
 */
static int
send_as(enum ipc_role from, enum ipc_role to, uint16_t type, unsigned nfds,
    int *received_fd)
{
	static struct ipc_msg msg;
	struct ipc_ends ends = { to, from };
	uint8_t payload[16];
	int sv[2], fds[IPC_MAX_FDS + 1], r;

	assert_true(nfds <= IPC_MAX_FDS + 1);
	memset(payload, 0, sizeof(payload));
	assert_int_equal(ipc_socketpair(sv), 0);
	assert_int_equal(fds_open(fds, nfds), 0);
	r = ipc_send(sv[0], type, 7, payload, sizeof(payload), fds, nfds);
	fds_close(fds, nfds);
	if (r < 0) {
		assert_true(nfds > IPC_MAX_FDS);
		close(sv[0]);
		close(sv[1]);
		*received_fd = -1;
		return r;
	}
	r = ipc_recv(sv[1], &ends, &msg);
	*received_fd = -1;
	if (r == 1) {
		assert_int_equal(msg.hdr.type, type);
		assert_int_equal(msg.nfds, nfds);
		if (nfds > 0)
			*received_fd = dup(msg.fds[0]);
		ipc_msg_close_fds(&msg);
	} else {
		/* nothing was handed over, descriptors included */
		assert_int_equal(msg.nfds, 0);
	}
	close(sv[0]);
	close(sv[1]);
	return r;
}

static void
test_each_type_from_each_peer(void **state)
{
	unsigned t, i, j, allowed_fds;
	int r, fd, want;

	(void)state;
	for (t = 1; t < 64; t++) {
		if (!ipc_type_known((uint16_t)t))
			continue;
		allowed_fds = spec_fds((uint16_t)t);
		for (i = 0; i < 3; i++) {
			for (j = 0; j < 3; j++) {
				want = spec_allows(roles[i], roles[j],
				    (uint16_t)t);
				r = send_as(roles[i], roles[j], (uint16_t)t, 0,
				    &fd);
				if (r != (want ? 1 : -EPERM))
					fail_msg("%s from %s to %s: %d, want %s",
					    ipc_type_name((uint16_t)t),
					    ipc_role_name(roles[i]),
					    ipc_role_name(roles[j]), r,
					    want ? "accepted" : "-EPERM");
				assert_int_equal(ipc_permit((uint16_t)t,
				    roles[i], roles[j], 0), want ? 0 : -EPERM);
				if (!want)
					continue;
				/* as many descriptors as allowed, then one more */
				if (allowed_fds > 0) {
					r = send_as(roles[i], roles[j],
					    (uint16_t)t, allowed_fds, &fd);
					assert_int_equal(r, 1);
					assert_true(fd >= 0);
					close(fd);
				}
				r = send_as(roles[i], roles[j], (uint16_t)t,
				    allowed_fds + 1, &fd);
				/* past IPC_MAX_FDS the sender refuses it */
				if (r != -EPERM && !(allowed_fds == IPC_MAX_FDS &&
				    r == -EINVAL))
					fail_msg("%s from %s to %s with %u fds: "
					    "%d, want -EPERM",
					    ipc_type_name((uint16_t)t),
					    ipc_role_name(roles[i]),
					    ipc_role_name(roles[j]),
					    allowed_fds + 1, r);
			}
		}
	}
}

/* A refused message's descriptors are closed, not leaked to the receiver. */
static void
test_refused_fds_closed(void **state)
{
	static struct ipc_msg msg;
	struct ipc_ends keyd_from_worker = { IPC_ROLE_KEYD, IPC_ROLE_WORKER };
	int sv[2], fd, probe;

	(void)state;
	assert_int_equal(ipc_socketpair(sv), 0);
	assert_true((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	/* a worker passing keyd a descriptor on a SIGN: never allowed */
	assert_int_equal(ipc_send(sv[0], IPC_SIGN, 1, "x", 1, &fd, 1), 0);
	close(fd);
	assert_int_equal(ipc_recv(sv[1], &keyd_from_worker, &msg), -EPERM);
	/* the lowest free descriptor is the one the kernel installed */
	probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(probe, fd);
	close(probe);
	/* and ipc_recv() without ends refuses everything */
	assert_int_equal(ipc_send(sv[0], IPC_HELLO, 0, "x", 1, NULL, 0), 0);
	assert_int_equal(ipc_recv(sv[1], NULL, &msg), -EPERM);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_types),
		cmocka_unit_test(test_each_type_from_each_peer),
		cmocka_unit_test(test_refused_fds_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
