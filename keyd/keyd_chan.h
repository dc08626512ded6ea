/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_chan.h -- moat-keyd's worker channels: what keyd.c asks of them.
 */
#ifndef MOAT_KEYD_CHAN_H
#define MOAT_KEYD_CHAN_H

#include "ipc.h"

struct keyd;

/* keyd_chan.c */
void	keyd_chan_init(struct keyd *kd);
int	keyd_chan_add(struct keyd *kd, int fd, const struct ipc_channel *ic);
void	keyd_chan_close_all(struct keyd *kd);

#endif
