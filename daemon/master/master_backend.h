/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_backend.h -- unix-socket backends, connected by the master for
 * the workers (master_backend.c).
 */
#ifndef MOAT_MASTER_BACKEND_H
#define MOAT_MASTER_BACKEND_H

#include "ipc.h"
#include "master_types.h"

/* master_backend.c */
int	master_backend_init(struct master *m);
void	master_backend_init_retry(struct master *m);
void	master_backend_drop_waiting(struct master *m);
int	master_backend_ca_open(struct config *cfg, char *err, size_t errlen);
void	master_backend_request(struct master_child *w, const struct ipc_msg *msg);

#endif
