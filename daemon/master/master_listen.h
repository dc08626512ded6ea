/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_listen.h -- the listening sockets (master_listen.c): opened at
 * start, taken from systemd, kept or opened again by a reload.
 */
#ifndef MOAT_MASTER_LISTEN_H
#define MOAT_MASTER_LISTEN_H

#include <stddef.h>

#include "conf.h"
#include "master_types.h"

int	master_listen_systemd(struct master *m, char *err, size_t errlen);
int	master_listen_open(struct master *m, struct config *cfg,
	    const struct config *running, char *err, size_t errlen);
int	master_listen_claimed(const struct master *m, const struct config *cfg,
	    char *err, size_t errlen);
void	master_listen_handover(struct master *m, struct config *old,
	    const struct config *cfg);
void	master_listen_close(struct master *m, struct config *cfg);

#endif
