/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_keyd.h -- moat-keyd as the master runs it (master_keyd.c): its
 * start with every key, its stop, a key sent during a reload, and each
 * worker's channel to it.
 */
#ifndef MOAT_MASTER_KEYD_H
#define MOAT_MASTER_KEYD_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "master_types.h"

/* master_keyd.c */
void	master_keyd_init(struct master *m);
/* keyd serves (status 0), or could not start (err says why) */
typedef void master_keyd_ready_fn(struct master *m, int status,
    const char *err);

int	master_keyd_start(struct master *m, master_keyd_ready_fn *done,
	    char *err, size_t errlen);
void	master_keyd_stop(struct master *m);
int	master_keyd_channel(struct master *m, unsigned worker, int *worker_fd);
int	master_keyd_drop(struct master *m, uint32_t slot);
int	master_keyd_load_send(struct master *m, const struct frontend *fe,
	    unsigned cert, unsigned generation, unsigned flags, uint32_t id,
	    int *cert_fd, char *err, size_t errlen);

#endif
