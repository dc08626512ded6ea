/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_gen.h -- which certificate generations the workers still hold,
 * and dropping a previous key from keyd once none does (master_gen.c).
 */
#ifndef MOAT_MASTER_GEN_H
#define MOAT_MASTER_GEN_H

#include "ipc.h"
#include "master_types.h"

/* master_gen.c */
void	master_gen_started(struct master_child *w);
void	master_gen_took(struct master_child *w, unsigned frontend,
	    unsigned generation);
void	master_gen_released(struct master_child *w, const struct ipc_msg *msg);
void	master_gen_exited(struct master_child *w);
void	master_gen_check(struct master *m);

#endif
