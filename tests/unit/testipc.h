/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testipc.h -- what the IPC unit tests share (testipc.c).
 */
#ifndef MOAT_TESTIPC_H
#define MOAT_TESTIPC_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct pair {
	int	sv[2];
};

/* testipc.c */
int	testipc_pair_setup(void **state);
int	testipc_pair_teardown(void **state);
size_t	testipc_raw_msg(uint8_t *buf, uint16_t magic, uint8_t version,
	    uint16_t type, uint32_t len_field, const void *payload, size_t len);
int	testipc_recv(int fd, struct ipc_msg *msg);
struct ipc_msg *testipc_xfer(struct pair *p, uint16_t type, uint32_t id,
	    const void *payload, size_t len);

#endif
