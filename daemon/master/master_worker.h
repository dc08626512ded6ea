/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_worker.h -- the workers as the master runs them
 * (master_worker.c): their slots, their start, their stop.
 */
#ifndef MOAT_MASTER_WORKER_H
#define MOAT_MASTER_WORKER_H

#include "master_types.h"

/* master_worker.c */
void	master_worker_init(struct master *m);
void	master_worker_start(struct master_child *w);
void	master_worker_stop(struct master_child *w);

#endif
