/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testipc.c -- what the IPC unit tests share (testipc.h): a socketpair per
 * test, raw datagrams, and a receive as a process the table lets a type
 * travel to.
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

int
testipc_pair_setup(void **state)
{
	static struct pair p;

	if (ipc_socketpair(p.sv) < 0)
		return -1;
	*state = &p;
	return 0;
}

int
testipc_pair_teardown(void **state)
{
	struct pair *p = *state;

	close(p->sv[0]);
	close(p->sv[1]);
	return 0;
}

/* Build a raw datagram: header fields as given, payload copied. */
size_t
testipc_raw_msg(uint8_t *buf, uint16_t magic, uint8_t version, uint16_t type,
    uint32_t len_field, const void *payload, size_t len)
{
	struct ipc_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = magic;
	h.version = version;
	h.type = type;
	h.id = 42;
	h.len = len_field;
	memcpy(buf, &h, sizeof(h));
	if (len > 0)
		memcpy(buf + sizeof(h), payload, len);
	return sizeof(h) + len;
}

/*
 * ipc_recv() as a process to which the table lets this datagram's type
 * travel (the permit check is tested in test_ipc_msgs.c); the type is
 * peeked from the header without taking any descriptor.
 */
int
testipc_recv(int fd, struct ipc_msg *msg)
{
	static const enum ipc_role roles[] = {
		IPC_ROLE_MASTER, IPC_ROLE_WORKER, IPC_ROLE_KEYD
	};
	struct ipc_ends ends = { IPC_ROLE_KEYD, IPC_ROLE_WORKER };
	struct ipc_hdr h;
	unsigned i, j;

	if (recv(fd, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) ==
	    (ssize_t)sizeof(h))
		for (i = 0; i < 3; i++)
			for (j = 0; j < 3; j++)
				if (ipc_permit(h.type, roles[i], roles[j],
				    0) == 0) {
					ends.peer = roles[i];
					ends.self = roles[j];
					i = j = 3;
				}
	return ipc_recv(fd, &ends, msg);
}

/* Send type/payload over the pair and receive it on the other end. */
struct ipc_msg *
testipc_xfer(struct pair *p, uint16_t type, uint32_t id, const void *payload,
    size_t len)
{
	static struct ipc_msg msg;

	assert_int_equal(ipc_send(p->sv[0], type, id, payload, len, NULL, 0), 0);
	assert_int_equal(testipc_recv(p->sv[1], &msg), 1);
	assert_int_equal(msg.hdr.type, type);
	assert_int_equal(msg.hdr.id, id);
	assert_int_equal(msg.hdr.len, len);
	assert_int_equal(msg.nfds, 0);
	return &msg;
}
